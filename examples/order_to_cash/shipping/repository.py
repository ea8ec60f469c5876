"""Data access of the shipping service, in the message's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage import MemoryTable, backend_of, memory_tables
from .tables import shipments

CREATED = "created"
VOIDED = "voided"
CANCELED = "canceled"


@dataclass(frozen=True)
class Shipment:
    """An order's shipment record."""

    order_id: str
    status: str
    tracking_id: str | None
    carrier: str | None
    note: str
    created_at: datetime
    updated_at: datetime


class ShippingRepository(Protocol):
    """Shipments, seen from one transaction."""

    async def get(self, order_id: str) -> Shipment | None: ...

    async def add(self, shipment: Shipment) -> None:
        """Insert; fails (rolling the message back) if the order has a shipment already."""
        ...

    async def set_status(self, order_id: str, status: str, note: str, at: datetime) -> None: ...


def _shipment(row: Any) -> Shipment:
    return Shipment(row["order_id"], row["status"], row["tracking_id"], row["carrier"],
                    row["note"], row["created_at"], row["updated_at"])


class SqlShippingRepository:
    """On a SQLAlchemy AsyncConnection (SqlStore: SQLite or PostgreSQL)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def get(self, order_id: str) -> Shipment | None:
        row = (await self.conn.execute(
            select(shipments).where(shipments.c.order_id == order_id))).first()
        return None if row is None else _shipment(row._mapping)

    async def add(self, shipment: Shipment) -> None:
        await self.conn.execute(insert(shipments).values(
            order_id=shipment.order_id, status=shipment.status,
            tracking_id=shipment.tracking_id, carrier=shipment.carrier, note=shipment.note,
            created_at=shipment.created_at, updated_at=shipment.updated_at))

    async def set_status(self, order_id: str, status: str, note: str, at: datetime) -> None:
        await self.conn.execute(update(shipments).where(shipments.c.order_id == order_id)
                                .values(status=status, note=note, updated_at=at))


class AsyncpgShippingRepository:
    """On an asyncpg connection (an asyncpg-based store), PostgreSQL tables as
    :func:`~examples.order_to_cash.shipping.tables.create_tables` makes them."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def get(self, order_id: str) -> Shipment | None:
        row = await self.conn.fetchrow("SELECT * FROM shipments WHERE order_id = $1", order_id)
        return None if row is None else _shipment(row)

    async def add(self, shipment: Shipment) -> None:
        await self.conn.execute(
            "INSERT INTO shipments (order_id, status, tracking_id, carrier, note, created_at,"
            " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)", shipment.order_id,
            shipment.status, shipment.tracking_id, shipment.carrier, shipment.note,
            shipment.created_at, shipment.updated_at)

    async def set_status(self, order_id: str, status: str, note: str, at: datetime) -> None:
        await self.conn.execute(
            "UPDATE shipments SET status = $2, note = $3, updated_at = $4 WHERE order_id = $1",
            order_id, status, note, at)


class MemoryShippingRepository:
    """In memory, for MemoryStore: rolled back with the message's transaction."""

    def __init__(self, tx: Any) -> None:
        self._rows, self._undo = memory_tables(
            tx, "shipments", MemoryTable[str, Shipment])

    async def get(self, order_id: str) -> Shipment | None:
        return self._rows.get(order_id)

    async def add(self, shipment: Shipment) -> None:
        self._rows.insert(shipment.order_id, shipment, self._undo)

    async def set_status(self, order_id: str, status: str, note: str, at: datetime) -> None:
        current = self._rows.get(order_id)
        if current is not None:
            self._rows.put(order_id, Shipment(current.order_id, status, current.tracking_id,
                                              current.carrier, note, current.created_at, at),
                           self._undo)


def repository_for(tx: Any) -> ShippingRepository:
    """The shipping repository for the store transaction `tx`."""
    backend = backend_of(tx)
    if backend == "sqlalchemy":
        return SqlShippingRepository(tx.conn)
    if backend == "asyncpg":
        return AsyncpgShippingRepository(tx.conn)
    return MemoryShippingRepository(tx)
