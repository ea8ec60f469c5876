"""Data access of the inventory service, in the message's transaction.

Stock is taken with a conditional decrement (``UPDATE stock SET available = available - q
WHERE sku = s AND available >= q``): on PostgreSQL the row lock makes concurrent orders
queue on the row and re-check the condition, on SQLite writers are serialised — so stock
never goes below zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from core_saga import Transaction

from ..messages import StockLine
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


class InventoryRepository:
    """Stock and reservations (tables ``stock``, ``reservations``,
    ``reservation_lines``), seen from the transaction `tx`."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def get_reservation(self, order_id: str) -> Reservation | None:
        """The order's reservation, or None."""
        row = (await self.tx.execute(
            select(reservations).where(reservations.c.order_id == order_id))).first()
        if row is None:
            return None
        lines = await self.tx.execute(
            select(reservation_lines).where(reservation_lines.c.order_id == order_id)
            .order_by(reservation_lines.c.sku))
        return Reservation(row.order_id, row.status,
                           tuple(StockLine(sku=r.sku, quantity=r.quantity) for r in lines),
                           row.note, row.created_at, row.updated_at)

    async def add_reservation(self, reservation: Reservation) -> None:
        """Insert; ``sqlalchemy.exc.IntegrityError`` (rolling the message back) if the
        order has one already."""
        await self.tx.execute(insert(reservations).values(
            order_id=reservation.order_id, status=reservation.status, note=reservation.note,
            created_at=reservation.created_at, updated_at=reservation.updated_at))
        if reservation.lines:
            await self.tx.execute(insert(reservation_lines), [
                {"order_id": reservation.order_id, "sku": line.sku, "quantity": line.quantity}
                for line in reservation.lines])

    async def set_status(self, order_id: str, status: str, note: str, at: datetime) -> None:
        """Change the reservation's status and note."""
        await self.tx.execute(update(reservations).where(reservations.c.order_id == order_id)
                              .values(status=status, note=note, updated_at=at))

    async def take_stock(self, sku: str, quantity: int) -> bool:
        """Take `quantity` units if that many are available; False (nothing taken) if not,
        or if the article is unknown."""
        result = await self.tx.execute(
            update(stock).where(stock.c.sku == sku, stock.c.available >= quantity)
            .values(available=stock.c.available - quantity))
        return result.rowcount == 1

    async def return_stock(self, sku: str, quantity: int) -> None:
        """Put `quantity` units back."""
        await self.tx.execute(update(stock).where(stock.c.sku == sku)
                              .values(available=stock.c.available + quantity))

    async def set_stock(self, sku: str, available: int) -> None:
        """Set the units available (insert or overwrite)."""
        # INSERT ... ON CONFLICT DO UPDATE: the one statement whose construct differs by
        # database (both speak it; SQLAlchemy has one per dialect).
        make = postgresql.insert if self.tx.dialect == "postgresql" else sqlite.insert
        await self.tx.execute(make(stock).values(sku=sku, available=available)
                              .on_conflict_do_update(index_elements=[stock.c.sku],
                                                     set_={"available": available}))

    async def available(self, sku: str) -> int | None:
        """Units available, or None for an unknown article."""
        value = await self.tx.scalar(select(stock.c.available).where(stock.c.sku == sku))
        return None if value is None else int(value)
