"""The inventory service's own tables: stock levels and reservations."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, DateTime, Integer, MetaData, String, Table

from core_saga.persistence import SagaStore

metadata = MetaData()

stock = Table(
    "stock", metadata,
    Column("sku", String(64), primary_key=True),
    Column("available", Integer, nullable=False),
    CheckConstraint("available >= 0", name="stock_never_negative"),
)
"""Units on hand and not reserved, per article."""

reservations = Table(
    "reservations", metadata,
    Column("order_id", String(64), primary_key=True),  # one reservation per order, ever
    Column("status", String(16), nullable=False),
    Column("note", String(500), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
"""``reserved``, ``unavailable`` (nothing held) or ``released`` (stock given back, or a
release that came first: the order can no longer reserve)."""

reservation_lines = Table(
    "reservation_lines", metadata,
    Column("order_id", String(64), primary_key=True),
    Column("sku", String(64), primary_key=True),
    Column("quantity", Integer, nullable=False),
)
"""What a reservation holds (or asked for, when unavailable)."""


async def create_tables(store: SagaStore) -> None:
    """Create the inventory tables in `store` if missing."""
    await store.create_tables(metadata)
