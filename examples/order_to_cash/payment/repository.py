"""Data access of the payment service, in the message's transaction.

:func:`repository_for` picks the implementation for the store the transaction
belongs to: SQLAlchemy (SQLite, PostgreSQL), asyncpg, or in memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal, Protocol

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage import MemoryTable, backend_of, memory_tables
from .tables import payments

CHARGE: Final = "charge"
REFUND: Final = "refund"
CHARGED = "charged"
DECLINED = "declined"
REFUNDED = "refunded"
NOT_CHARGED = "not_charged"

Kind = Literal["charge", "refund"]


@dataclass(frozen=True)
class LedgerEntry:
    """One row of the payment ledger."""

    order_id: str
    kind: str
    status: str
    amount: Decimal
    currency: str
    reference: str | None
    note: str
    created_at: datetime


def balance(entries: Iterable[LedgerEntry]) -> Decimal:
    """Money kept for an order: charges that went through minus refunds paid."""
    total = Decimal(0)
    for entry in entries:
        if entry.kind == CHARGE and entry.status == CHARGED:
            total += entry.amount
        elif entry.kind == REFUND and entry.status == REFUNDED:
            total -= entry.amount
    return total


class PaymentRepository(Protocol):
    """The payment ledger, seen from one transaction."""

    async def get(self, order_id: str, kind: Kind) -> LedgerEntry | None:
        """The order's charge or refund row, if any."""
        ...

    async def add(self, entry: LedgerEntry) -> None:
        """Insert a row; fails (rolling the message back) if the order has one of that
        kind already."""
        ...

    async def entries(self, order_id: str) -> list[LedgerEntry]:
        """Every row of the order."""
        ...


def _entry(row: Any) -> LedgerEntry:
    return LedgerEntry(order_id=row.order_id, kind=row.kind, status=row.status,
                       amount=Decimal(row.amount), currency=row.currency,
                       reference=row.reference, note=row.note, created_at=row.created_at)


class SqlPaymentRepository:
    """On a SQLAlchemy AsyncConnection (SqlStore: SQLite or PostgreSQL)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def get(self, order_id: str, kind: Kind) -> LedgerEntry | None:
        row = (await self.conn.execute(select(payments).where(
            payments.c.order_id == order_id, payments.c.kind == kind))).first()
        return None if row is None else _entry(row)

    async def add(self, entry: LedgerEntry) -> None:
        await self.conn.execute(insert(payments).values(
            order_id=entry.order_id, kind=entry.kind, status=entry.status,
            amount=entry.amount, currency=entry.currency, reference=entry.reference,
            note=entry.note, created_at=entry.created_at))

    async def entries(self, order_id: str) -> list[LedgerEntry]:
        result = await self.conn.execute(select(payments).where(payments.c.order_id == order_id)
                                         .order_by(payments.c.kind))
        return [_entry(r) for r in result]


class AsyncpgPaymentRepository:
    """On an asyncpg connection (an asyncpg-based store). The tables are the ones
    :func:`~examples.order_to_cash.payment.tables.create_tables` makes on PostgreSQL."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def get(self, order_id: str, kind: Kind) -> LedgerEntry | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM payments WHERE order_id = $1 AND kind = $2", order_id, kind)
        return None if row is None else _entry(_Row(row))

    async def add(self, entry: LedgerEntry) -> None:
        await self.conn.execute(
            "INSERT INTO payments (order_id, kind, status, amount, currency, reference, note,"
            " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            entry.order_id, entry.kind, entry.status, entry.amount, entry.currency,
            entry.reference, entry.note, entry.created_at)

    async def entries(self, order_id: str) -> list[LedgerEntry]:
        rows = await self.conn.fetch(
            "SELECT * FROM payments WHERE order_id = $1 ORDER BY kind", order_id)
        return [_entry(_Row(r)) for r in rows]


class _Row:
    """Attribute access over an asyncpg Record."""

    def __init__(self, record: Any) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        return self._record[name]


class _MemoryLedger:
    def __init__(self) -> None:
        self.rows: MemoryTable[tuple[str, str], LedgerEntry] = MemoryTable()


class MemoryPaymentRepository:
    """In memory, for MemoryStore: rolled back with the message's transaction."""

    def __init__(self, tx: Any) -> None:
        self._ledger, self._undo = memory_tables(tx, "payments", _MemoryLedger)

    async def get(self, order_id: str, kind: Kind) -> LedgerEntry | None:
        return self._ledger.rows.get((order_id, kind))

    async def add(self, entry: LedgerEntry) -> None:
        self._ledger.rows.insert((entry.order_id, entry.kind), entry, self._undo)

    async def entries(self, order_id: str) -> list[LedgerEntry]:
        return sorted((e for e in self._ledger.rows.values() if e.order_id == order_id),
                      key=lambda e: e.kind)


def repository_for(tx: Any) -> PaymentRepository:
    """The payment repository for the store transaction `tx`."""
    backend = backend_of(tx)
    if backend == "sqlalchemy":
        return SqlPaymentRepository(tx.conn)
    if backend == "asyncpg":
        return AsyncpgPaymentRepository(tx.conn)
    return MemoryPaymentRepository(tx)
