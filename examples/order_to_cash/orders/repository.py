"""Data access of the order service, in one transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..messages import OrderLine
from ..storage import MemoryTable, as_utc, backend_of, memory_tables
from .tables import order_lines, orders

SUBMITTED = "Submitted"
COMPLETED = "Completed"
CANCELED = "Canceled"


@dataclass(frozen=True)
class OrderRecord:
    """An order as the order service keeps it."""

    order_id: str
    customer_id: str
    currency: str
    amount: Decimal
    lines: tuple[OrderLine, ...]
    risk_flags: tuple[str, ...]
    status: str
    idempotency_key: str | None
    request_hash: str
    created_at: datetime
    updated_at: datetime
    cancel_code: str | None = None
    reason: str | None = None
    tracking_id: str | None = None
    client_id: str = ""
    """The API client that placed it ("" when the service has no API keys)."""


class OrderRepository(Protocol):
    """Orders, seen from one transaction."""

    async def insert(self, order: OrderRecord) -> None:
        """Insert; a unique violation if the id or the idempotency key is taken."""
        ...

    async def get(self, order_id: str) -> OrderRecord | None: ...

    async def find_by_idempotency_key(self, key: str, client: str = "") -> OrderRecord | None:
        """The order `client` placed under `key` (a key is scoped to its client)."""
        ...

    async def set_outcome(self, order_id: str, *, status: str, at: datetime,
                          cancel_code: str | None = None, reason: str | None = None,
                          tracking_id: str | None = None) -> bool:
        """Record how a Submitted order ended; False (nothing changed) when the order is
        unknown or has ended already."""
        ...


def _record(row: Any, lines: list[Any]) -> OrderRecord:
    return OrderRecord(
        order_id=row["order_id"], customer_id=row["customer_id"], currency=row["currency"],
        amount=Decimal(str(row["amount"])),
        lines=tuple(OrderLine(sku=r["sku"], quantity=r["quantity"],
                              unit_price=Decimal(str(r["unit_price"]))) for r in lines),
        risk_flags=tuple(json.loads(row["risk_flags"])), status=row["status"],
        idempotency_key=row["idempotency_key"], request_hash=row["request_hash"],
        created_at=as_utc(row["created_at"]), updated_at=as_utc(row["updated_at"]),
        cancel_code=row["cancel_code"], reason=row["reason"], tracking_id=row["tracking_id"],
        client_id=row["client_id"])


def _row(order: OrderRecord) -> dict[str, Any]:
    return {"order_id": order.order_id, "idempotency_key": order.idempotency_key,
            "request_hash": order.request_hash, "customer_id": order.customer_id,
            "currency": order.currency, "amount": order.amount,
            "risk_flags": json.dumps(list(order.risk_flags)), "status": order.status,
            "cancel_code": order.cancel_code, "reason": order.reason,
            "tracking_id": order.tracking_id, "created_at": order.created_at,
            "updated_at": order.updated_at, "client_id": order.client_id}


class SqlOrderRepository:
    """On a SQLAlchemy AsyncConnection (SqlStore: SQLite or PostgreSQL)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def insert(self, order: OrderRecord) -> None:
        await self.conn.execute(insert(orders).values(**_row(order)))
        await self.conn.execute(insert(order_lines), [
            {"order_id": order.order_id, "line_no": number, "sku": line.sku,
             "quantity": line.quantity, "unit_price": line.unit_price}
            for number, line in enumerate(order.lines)])

    async def _load(self, where: Any) -> OrderRecord | None:
        row = (await self.conn.execute(select(orders).where(where))).first()
        if row is None:
            return None
        lines = await self.conn.execute(select(order_lines).where(
            order_lines.c.order_id == row.order_id).order_by(order_lines.c.line_no))
        return _record(row._mapping, [r._mapping for r in lines])

    async def get(self, order_id: str) -> OrderRecord | None:
        return await self._load(orders.c.order_id == order_id)

    async def find_by_idempotency_key(self, key: str, client: str = "") -> OrderRecord | None:
        return await self._load(and_(orders.c.client_id == client,
                                     orders.c.idempotency_key == key))

    async def set_outcome(self, order_id: str, *, status: str, at: datetime,
                          cancel_code: str | None = None, reason: str | None = None,
                          tracking_id: str | None = None) -> bool:
        result = await self.conn.execute(
            update(orders).where(orders.c.order_id == order_id, orders.c.status == SUBMITTED)
            .values(status=status, cancel_code=cancel_code, reason=reason,
                    tracking_id=tracking_id, updated_at=at))
        return result.rowcount == 1


class AsyncpgOrderRepository:
    """On an asyncpg connection (an asyncpg-based store), PostgreSQL tables as
    :func:`~examples.order_to_cash.orders.tables.create_tables` makes them."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def insert(self, order: OrderRecord) -> None:
        row = _row(order)
        columns = list(row)
        await self.conn.execute(
            f"INSERT INTO orders ({', '.join(columns)}) VALUES "
            f"({', '.join(f'${i}' for i in range(1, len(columns) + 1))})",
            *row.values())
        await self.conn.executemany(
            "INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price)"
            " VALUES ($1, $2, $3, $4, $5)",
            [(order.order_id, number, line.sku, line.quantity, line.unit_price)
             for number, line in enumerate(order.lines)])

    async def _load(self, where: str, *values: str) -> OrderRecord | None:
        row = await self.conn.fetchrow(f"SELECT * FROM orders WHERE {where}", *values)
        if row is None:
            return None
        lines = await self.conn.fetch(
            "SELECT * FROM order_lines WHERE order_id = $1 ORDER BY line_no", row["order_id"])
        return _record(row, list(lines))

    async def get(self, order_id: str) -> OrderRecord | None:
        return await self._load("order_id = $1", order_id)

    async def find_by_idempotency_key(self, key: str, client: str = "") -> OrderRecord | None:
        return await self._load("client_id = $1 AND idempotency_key = $2", client, key)

    async def set_outcome(self, order_id: str, *, status: str, at: datetime,
                          cancel_code: str | None = None, reason: str | None = None,
                          tracking_id: str | None = None) -> bool:
        done = await self.conn.execute(
            "UPDATE orders SET status = $2, cancel_code = $3, reason = $4, tracking_id = $5,"
            " updated_at = $6 WHERE order_id = $1 AND status = $7",
            order_id, status, cancel_code, reason, tracking_id, at, SUBMITTED)
        return bool(done == "UPDATE 1")


class _MemoryOrders:
    def __init__(self) -> None:
        self.orders: MemoryTable[str, OrderRecord] = MemoryTable()
        self.keys: MemoryTable[tuple[str, str], str] = MemoryTable()


class MemoryOrderRepository:
    """In memory, for MemoryStore: rolled back with the transaction."""

    def __init__(self, tx: Any) -> None:
        self._t, self._undo = memory_tables(tx, "orders", _MemoryOrders)

    async def insert(self, order: OrderRecord) -> None:
        if order.idempotency_key is not None:
            self._t.keys.insert((order.client_id, order.idempotency_key), order.order_id,
                                self._undo)
        self._t.orders.insert(order.order_id, order, self._undo)

    async def get(self, order_id: str) -> OrderRecord | None:
        return self._t.orders.get(order_id)

    async def find_by_idempotency_key(self, key: str, client: str = "") -> OrderRecord | None:
        order_id = self._t.keys.get((client, key))
        return None if order_id is None else self._t.orders.get(order_id)

    async def set_outcome(self, order_id: str, *, status: str, at: datetime,
                          cancel_code: str | None = None, reason: str | None = None,
                          tracking_id: str | None = None) -> bool:
        current = self._t.orders.get(order_id)
        if current is None or current.status != SUBMITTED:
            return False
        self._t.orders.put(order_id, replace(current, status=status, cancel_code=cancel_code,
                                             reason=reason, tracking_id=tracking_id,
                                             updated_at=at), self._undo)
        return True


def repository_for(tx: Any) -> OrderRepository:
    """The order repository for the store transaction `tx`."""
    backend = backend_of(tx)
    if backend == "sqlalchemy":
        return SqlOrderRepository(tx.conn)
    if backend == "asyncpg":
        return AsyncpgOrderRepository(tx.conn)
    return MemoryOrderRepository(tx)
