"""The shipping service's own table: one shipment per order."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, String, Table

from core_saga.persistence import SagaStore

metadata = MetaData()

shipments = Table(
    "shipments", metadata,
    Column("order_id", String(64), primary_key=True),  # at most one shipment per order
    Column("status", String(16), nullable=False),
    Column("tracking_id", String(100), nullable=True),
    Column("carrier", String(40), nullable=True),
    Column("note", String(500), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
"""``created`` (a live label), ``voided`` (its label voided: not to be shipped) or
``canceled`` (canceled before any label: none will be issued)."""


async def create_tables(store: SagaStore) -> None:
    """Create the shipping tables in `store` if missing."""
    await store.create_tables(metadata)
