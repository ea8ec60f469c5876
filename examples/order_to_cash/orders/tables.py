"""The order service's own tables."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from core_saga.persistence import SagaStore

from ..storage import ExactDecimal

metadata = MetaData()

orders = Table(
    "orders", metadata,
    Column("order_id", String(64), primary_key=True),
    Column("idempotency_key", String(200), nullable=True),
    Column("client_id", String(200), nullable=False, server_default=text("''")),
    # The same key twice from one client creates one order; NULL (no key) may repeat;
    # another client's key is another key ("" is the client when there are no API keys).
    UniqueConstraint("client_id", "idempotency_key", name="uq_orders_client_key"),
    Column("request_hash", String(64), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", ExactDecimal(), nullable=False),
    Column("risk_flags", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("cancel_code", String(40), nullable=True),
    Column("reason", String(1000), nullable=True),
    Column("tracking_id", String(100), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
"""An order and its outcome: ``Submitted``, then ``Completed`` or ``Canceled``."""

order_lines = Table(
    "order_lines", metadata,
    Column("order_id", String(64), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", ExactDecimal(), nullable=False),
)


async def create_tables(store: SagaStore) -> None:
    """Create the order tables in `store` if missing."""
    await store.create_tables(metadata)
