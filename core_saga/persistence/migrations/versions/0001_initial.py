"""The first schema: instances, index, history, inbox, outbox, errors.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core_saga.persistence._schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = ("core",)
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "saga_instances",
        sa.Column("saga_type", sa.String(200), primary_key=True),
        sa.Column("correlation_id", sa.String(200), primary_key=True),
        sa.Column("state", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_saga_instances_state", "saga_instances",
                    ["saga_type", "state", "updated_at"])
    op.create_table(
        "saga_index",
        sa.Column("saga_type", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("value", sa.String(400), primary_key=True),
        sa.Column("correlation_id", sa.String(200), primary_key=True),
    )
    op.create_index("ix_saga_index_instance", "saga_index", ["saga_type", "correlation_id"])
    op.create_table(
        "saga_history",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("saga_type", sa.String(200), nullable=False),
        sa.Column("correlation_id", sa.String(200), nullable=False),
        sa.Column("event", sa.String(200), nullable=False),
        sa.Column("from_state", sa.String(200), nullable=False),
        sa.Column("to_state", sa.String(200), nullable=False),
        sa.Column("message_id", sa.String(100), nullable=False),
        sa.Column("message_type", sa.String(300), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_saga_history_instance", "saga_history",
                    ["saga_type", "correlation_id", "id"])
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(200), primary_key=True),
        sa.Column("message_id", sa.String(100), primary_key=True),
        sa.Column("processed_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_inbox_processed_at", "inbox", ["processed_at"])
    op.create_table(
        "outbox",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("destination", sa.String(1000), nullable=False),
        sa.Column("message_type", sa.String(300), nullable=False),
        sa.Column("correlation_id", sa.String(200), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("deliver_at", UTCDateTime, nullable=False),
        sa.Column("locked_until", UTCDateTime, nullable=True),
        sa.Column("dispatched_at", UTCDateTime, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("failed", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("schedule_token", sa.String(100), nullable=True),
    )
    op.create_index("ix_outbox_pending", "outbox", ["deliver_at"],
                    postgresql_where=sa.text("dispatched_at IS NULL"),
                    sqlite_where=sa.text("dispatched_at IS NULL"))
    op.create_index("ix_outbox_token", "outbox", ["schedule_token"])
    op.create_index("ix_outbox_correlation", "outbox", ["correlation_id"])
    op.create_table(
        "message_errors",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("message_id", sa.String(100), nullable=True),
        sa.Column("message_type", sa.String(300), nullable=True),
        sa.Column("correlation_id", sa.String(200), nullable=True),
        sa.Column("error_type", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("headers", sa.Text, nullable=True),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_message_errors_at", "message_errors", ["at"])


def downgrade() -> None:
    for table in ("message_errors", "outbox", "inbox", "saga_history", "saga_index",
                  "saga_instances"):
        op.drop_table(table)
