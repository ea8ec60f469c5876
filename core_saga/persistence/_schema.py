"""The tables: saga instances, their index and history, the inbox, the outbox, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite keeps them as naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

# BigInteger ids autoincrement on PostgreSQL; SQLite needs INTEGER for rowid aliasing.
Id = BigInteger().with_variant(Integer(), "sqlite")

# Only the primary key: a transition rewrites `state`, `version`, `data` and
# `updated_at`, and on PostgreSQL an update that changes no indexed column is a HOT
# update (no index entries, dead versions pruned within the page). An index holding
# `state` made every transition a full update with two new index entries, and cost 30 %
# of the per-message throughput at 8 connections (docs/performance.md). The operator's
# queries by state scan the live instances instead.
saga_instances = Table(
    "saga_instances",
    metadata,
    Column("saga_type", String(200), primary_key=True),
    Column("correlation_id", String(200), primary_key=True),
    Column("state", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("data", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

saga_index = Table(
    "saga_index",
    metadata,
    Column("saga_type", String(200), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("value", String(400), primary_key=True),
    Column("correlation_id", String(200), primary_key=True),
    Index("ix_saga_index_instance", "saga_type", "correlation_id"),
)

saga_history = Table(
    "saga_history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("saga_type", String(200), nullable=False),
    Column("correlation_id", String(200), nullable=False),
    Column("event", String(200), nullable=False),
    Column("from_state", String(200), nullable=False),
    Column("to_state", String(200), nullable=False),
    Column("message_id", String(100), nullable=False),
    Column("message_type", String(300), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("detail", Text, nullable=True),
    Index("ix_saga_history_instance", "saga_type", "correlation_id", "id"),
)

inbox = Table(
    "inbox",
    metadata,
    Column("consumer", String(200), primary_key=True),
    Column("message_id", String(100), primary_key=True),
    Column("processed_at", UTCDateTime, nullable=False),
    Index("ix_inbox_processed_at", "processed_at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", String(100), nullable=False),
    Column("kind", String(50), nullable=False),
    Column("destination", String(1000), nullable=False),
    Column("message_type", String(300), nullable=False),
    Column("correlation_id", String(200), nullable=True),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("deliver_at", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime, nullable=True),
    Column("dispatched_at", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=True),
    Column("failed", Boolean, nullable=False, server_default=text("false")),
    Column("schedule_token", String(100), nullable=True),
    Index("ix_outbox_pending", "deliver_at", postgresql_where=text("dispatched_at IS NULL"),
          sqlite_where=text("dispatched_at IS NULL")),
    # Timers only: cancelling by token is the one query it serves (migration 0004).
    Index("ix_outbox_token", "schedule_token",
          postgresql_where=text("schedule_token IS NOT NULL"),
          sqlite_where=text("schedule_token IS NOT NULL")),
    Index("ix_outbox_correlation", "correlation_id"),
)

errors = Table(
    "message_errors",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("endpoint", String(200), nullable=False),
    Column("message_id", String(100), nullable=True),
    Column("message_type", String(300), nullable=True),
    Column("correlation_id", String(200), nullable=True),
    Column("error_type", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("headers", Text, nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_message_errors_at", "at"),
)

# A message's handler failures at one endpoint, counted in the store rather than read
# off the broker's receive count: a worker killed while holding a message spends a
# receive, not a failure (migration 0005). A row is written only when a handler fails;
# dead-lettering the message removes it, the retention purge removes the others.
delivery_failures = Table(
    "delivery_failures",
    metadata,
    Column("endpoint", String(200), primary_key=True),
    Column("message_id", String(100), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("first_at", UTCDateTime, nullable=False),
    Column("last_at", UTCDateTime, nullable=False),
    Index("ix_delivery_failures_last_at", "last_at"),
)
