"""Data access of the inventory service, in the message's transaction.

Stock is taken with a conditional decrement (``UPDATE stock SET available = available - q
WHERE sku = s AND available >= q``): on PostgreSQL the row lock makes concurrent orders
queue on the row and re-check the condition, on SQLite writers are serialised, and in
memory transactions run one at a time — so stock never goes below zero.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ..messages import StockLine
from ..storage import MemoryTable, backend_of, memory_tables
from .tables import reservation_lines, reservations, stock

RESERVED = "reserved"
UNAVAILABLE = "unavailable"
RELEASED = "released"


@dataclass(frozen=True)
class Reservation:
    """An order's reservation."""

    order_id: str
    status: str
    lines: tuple[StockLine, ...]
    note: str
    created_at: datetime
    updated_at: datetime


class InventoryRepository(Protocol):
    """Stock and reservations, seen from one transaction."""

    async def get_reservation(self, order_id: str) -> Reservation | None: ...

    async def add_reservation(self, reservation: Reservation) -> None:
        """Insert; fails (rolling the message back) if the order has one already."""
        ...

    async def set_status(self, order_id: str, status: str, note: str, at: datetime) -> None: ...

    async def take_stock(self, sku: str, quantity: int) -> bool:
        """Take `quantity` units if that many are available; False (nothing taken) if not,
        or if the article is unknown."""
        ...

    async def return_stock(self, sku: str, quantity: int) -> None: ...

    async def set_stock(self, sku: str, available: int) -> None:
        """Set the units available (insert or overwrite)."""
        ...

    async def available(self, sku: str) -> int | None:
        """Units available, or None for an unknown article."""
        ...


class SqlInventoryRepository:
    """On a SQLAlchemy AsyncConnection (SqlStore: SQLite or PostgreSQL)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def get_reservation(self, order_id: str) -> Reservation | None:
        row = (await self.conn.execute(
            select(reservations).where(reservations.c.order_id == order_id))).first()
        if row is None:
            return None
        lines = await self.conn.execute(
            select(reservation_lines).where(reservation_lines.c.order_id == order_id)
            .order_by(reservation_lines.c.sku))
        return Reservation(row.order_id, row.status,
                           tuple(StockLine(sku=r.sku, quantity=r.quantity) for r in lines),
                           row.note, row.created_at, row.updated_at)

    async def add_reservation(self, reservation: Reservation) -> None:
        await self.conn.execute(insert(reservations).values(
            order_id=reservation.order_id, status=reservation.status, note=reservation.note,
            created_at=reservation.created_at, updated_at=reservation.updated_at))
        if reservation.lines:
            await self.conn.execute(insert(reservation_lines), [
                {"order_id": reservation.order_id, "sku": line.sku, "quantity": line.quantity}
                for line in reservation.lines])

    async def set_status(self, order_id: str, status: str, note: str, at: datetime) -> None:
        await self.conn.execute(update(reservations).where(reservations.c.order_id == order_id)
                                .values(status=status, note=note, updated_at=at))

    async def take_stock(self, sku: str, quantity: int) -> bool:
        result = await self.conn.execute(
            update(stock).where(stock.c.sku == sku, stock.c.available >= quantity)
            .values(available=stock.c.available - quantity))
        return result.rowcount == 1

    async def return_stock(self, sku: str, quantity: int) -> None:
        await self.conn.execute(update(stock).where(stock.c.sku == sku)
                                .values(available=stock.c.available + quantity))

    async def set_stock(self, sku: str, available: int) -> None:
        make = pg_insert if self.conn.dialect.name == "postgresql" else sqlite_insert
        stmt = make(stock).values(sku=sku, available=available)
        await self.conn.execute(stmt.on_conflict_do_update(
            index_elements=[stock.c.sku], set_={"available": available}))

    async def available(self, sku: str) -> int | None:
        value = (await self.conn.execute(
            select(stock.c.available).where(stock.c.sku == sku))).scalar()
        return None if value is None else int(value)


class AsyncpgInventoryRepository:
    """On an asyncpg connection (an asyncpg-based store), PostgreSQL tables as
    :func:`~examples.order_to_cash.inventory.tables.create_tables` makes them."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def get_reservation(self, order_id: str) -> Reservation | None:
        row = await self.conn.fetchrow("SELECT * FROM reservations WHERE order_id = $1",
                                       order_id)
        if row is None:
            return None
        lines = await self.conn.fetch(
            "SELECT sku, quantity FROM reservation_lines WHERE order_id = $1 ORDER BY sku",
            order_id)
        return Reservation(row["order_id"], row["status"],
                           tuple(StockLine(sku=r["sku"], quantity=r["quantity"]) for r in lines),
                           row["note"], row["created_at"], row["updated_at"])

    async def add_reservation(self, reservation: Reservation) -> None:
        await self.conn.execute(
            "INSERT INTO reservations (order_id, status, note, created_at, updated_at)"
            " VALUES ($1, $2, $3, $4, $5)", reservation.order_id, reservation.status,
            reservation.note, reservation.created_at, reservation.updated_at)
        if reservation.lines:
            await self.conn.executemany(
                "INSERT INTO reservation_lines (order_id, sku, quantity) VALUES ($1, $2, $3)",
                [(reservation.order_id, line.sku, line.quantity) for line in reservation.lines])

    async def set_status(self, order_id: str, status: str, note: str, at: datetime) -> None:
        await self.conn.execute(
            "UPDATE reservations SET status = $2, note = $3, updated_at = $4"
            " WHERE order_id = $1", order_id, status, note, at)

    async def take_stock(self, sku: str, quantity: int) -> bool:
        status = await self.conn.execute(
            "UPDATE stock SET available = available - $2 WHERE sku = $1 AND available >= $2",
            sku, quantity)
        return bool(status == "UPDATE 1")

    async def return_stock(self, sku: str, quantity: int) -> None:
        await self.conn.execute("UPDATE stock SET available = available + $2 WHERE sku = $1",
                                sku, quantity)

    async def set_stock(self, sku: str, available: int) -> None:
        await self.conn.execute(
            "INSERT INTO stock (sku, available) VALUES ($1, $2)"
            " ON CONFLICT (sku) DO UPDATE SET available = EXCLUDED.available", sku, available)

    async def available(self, sku: str) -> int | None:
        value = await self.conn.fetchval("SELECT available FROM stock WHERE sku = $1", sku)
        return None if value is None else int(value)


class _MemoryInventory:
    def __init__(self) -> None:
        self.stock: MemoryTable[str, int] = MemoryTable()
        self.reservations: MemoryTable[str, Reservation] = MemoryTable()


class MemoryInventoryRepository:
    """In memory, for MemoryStore: rolled back with the message's transaction (and
    transactions there run one at a time, so a check-then-take is atomic)."""

    def __init__(self, tx: Any) -> None:
        self._t, self._undo = memory_tables(tx, "inventory", _MemoryInventory)

    async def get_reservation(self, order_id: str) -> Reservation | None:
        return self._t.reservations.get(order_id)

    async def add_reservation(self, reservation: Reservation) -> None:
        self._t.reservations.insert(reservation.order_id, reservation, self._undo)

    async def set_status(self, order_id: str, status: str, note: str, at: datetime) -> None:
        current = self._t.reservations.get(order_id)
        if current is not None:
            self._t.reservations.put(order_id, replace(current, status=status, note=note,
                                                       updated_at=at), self._undo)

    async def take_stock(self, sku: str, quantity: int) -> bool:
        available = self._t.stock.get(sku)
        if available is None or available < quantity:
            return False
        self._t.stock.put(sku, available - quantity, self._undo)
        return True

    async def return_stock(self, sku: str, quantity: int) -> None:
        available = self._t.stock.get(sku)
        if available is not None:
            self._t.stock.put(sku, available + quantity, self._undo)

    async def set_stock(self, sku: str, available: int) -> None:
        self._t.stock.put(sku, available, self._undo)

    async def available(self, sku: str) -> int | None:
        return self._t.stock.get(sku)


def repository_for(tx: Any) -> InventoryRepository:
    """The inventory repository for the store transaction `tx`."""
    backend = backend_of(tx)
    if backend == "sqlalchemy":
        return SqlInventoryRepository(tx.conn)
    if backend == "asyncpg":
        return AsyncpgInventoryRepository(tx.conn)
    return MemoryInventoryRepository(tx)
