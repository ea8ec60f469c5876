"""Data access of the inventory service, in the message's transaction.

Stock is taken with a conditional decrement (``UPDATE stock SET available = available - q
WHERE sku = s AND available >= q``): on PostgreSQL the row lock makes concurrent orders
queue on the row and re-check the condition, on SQLite writers are serialised — so stock
never goes below zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
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


# Built once: a statement object is compiled once per store and its cache key computed
# once, so each message pays only for binding its values.
_GET_RESERVATION = select(reservations).where(reservations.c.order_id == bindparam("order_id"))
_RESERVATION_LINES = (
    select(reservation_lines).where(reservation_lines.c.order_id == bindparam("order_id"))
    .order_by(reservation_lines.c.sku))
_ADD_RESERVATION = insert(reservations)
_ADD_RESERVATION_LINES = insert(reservation_lines)
_SET_STATUS = (update(reservations).where(reservations.c.order_id == bindparam("w_order_id"))
               .values(status=bindparam("status"), note=bindparam("note"),
                       updated_at=bindparam("updated_at")))
_TAKE_STOCK = (update(stock)
               .where(stock.c.sku == bindparam("w_sku"),
                      stock.c.available >= bindparam("w_quantity"))
               .values(available=stock.c.available - bindparam("w_quantity")))
_RETURN_STOCK = (update(stock).where(stock.c.sku == bindparam("w_sku"))
                 .values(available=stock.c.available + bindparam("w_quantity")))
_AVAILABLE = select(stock.c.available).where(stock.c.sku == bindparam("sku"))

# INSERT ... ON CONFLICT (sku) DO UPDATE: the one statement whose construct differs by
# database (both speak it; SQLAlchemy has an insert per dialect).
_PG_INSERT, _SQLITE_INSERT = postgresql.insert(stock), sqlite.insert(stock)
_SET_STOCK_PG = _PG_INSERT.on_conflict_do_update(
    index_elements=[stock.c.sku], set_={"available": _PG_INSERT.excluded.available})
_SET_STOCK_SQLITE = _SQLITE_INSERT.on_conflict_do_update(
    index_elements=[stock.c.sku], set_={"available": _SQLITE_INSERT.excluded.available})


class InventoryRepository:
    """Stock and reservations (tables ``stock``, ``reservations``,
    ``reservation_lines``), seen from the transaction `tx`."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def get_reservation(self, order_id: str) -> Reservation | None:
        """The order's reservation, or None."""
        row = (await self.tx.execute(_GET_RESERVATION, {"order_id": order_id})).first()
        if row is None:
            return None
        lines = await self.tx.execute(_RESERVATION_LINES, {"order_id": order_id})
        return Reservation(row.order_id, row.status,
                           tuple(StockLine(sku=r.sku, quantity=r.quantity) for r in lines),
                           row.note, row.created_at, row.updated_at)

    async def add_reservation(self, reservation: Reservation) -> None:
        """Insert; ``sqlalchemy.exc.IntegrityError`` (rolling the message back) if the
        order has one already."""
        await self.tx.execute(_ADD_RESERVATION, {
            "order_id": reservation.order_id, "status": reservation.status,
            "note": reservation.note, "created_at": reservation.created_at,
            "updated_at": reservation.updated_at})
        if reservation.lines:
            await self.tx.execute(_ADD_RESERVATION_LINES, [
                {"order_id": reservation.order_id, "sku": line.sku, "quantity": line.quantity}
                for line in reservation.lines])

    async def set_status(self, order_id: str, status: str, note: str, at: datetime) -> None:
        """Change the reservation's status and note."""
        await self.tx.execute(_SET_STATUS, {"w_order_id": order_id, "status": status,
                                            "note": note, "updated_at": at})

    async def take_stock(self, sku: str, quantity: int) -> bool:
        """Take `quantity` units if that many are available; False (nothing taken) if not,
        or if the article is unknown."""
        result = await self.tx.execute(_TAKE_STOCK, {"w_sku": sku, "w_quantity": quantity})
        return result.rowcount == 1

    async def return_stock(self, sku: str, quantity: int) -> None:
        """Put `quantity` units back."""
        await self.tx.execute(_RETURN_STOCK, {"w_sku": sku, "w_quantity": quantity})

    async def set_stock(self, sku: str, available: int) -> None:
        """Set the units available (insert or overwrite)."""
        upsert = _SET_STOCK_PG if self.tx.dialect == "postgresql" else _SET_STOCK_SQLITE
        await self.tx.execute(upsert, {"sku": sku, "available": available})

    async def available(self, sku: str) -> int | None:
        """Units available, or None for an unknown article."""
        value = await self.tx.scalar(_AVAILABLE, {"sku": sku})
        return None if value is None else int(value)
