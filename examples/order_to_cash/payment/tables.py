"""The payment service's own table: the ledger of charges and refunds."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, String, Table

from core_saga.persistence import SagaStore

from ..storage import ExactDecimal

metadata = MetaData()

payments = Table(
    "payments", metadata,
    Column("order_id", String(64), primary_key=True),
    Column("kind", String(10), primary_key=True),
    # (order_id, kind) is the key: one charge and one refund per order, ever.
    Column("status", String(16), nullable=False),
    Column("amount", ExactDecimal(), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reference", String(100), nullable=True),
    Column("note", String(500), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
"""One row per (order, charge|refund). ``status``: ``charged`` or ``declined`` for a
charge, ``refunded`` or ``not_charged`` for a refund."""


async def create_tables(store: SagaStore) -> None:
    """Create the payment tables in `store` if missing."""
    await store.create_tables(metadata)
