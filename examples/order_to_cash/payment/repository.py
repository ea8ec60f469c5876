"""Data access of the payment service, in the message's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final, Literal

from sqlalchemy import bindparam, insert, select

from core_saga import Row, Transaction

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


# Built once: a statement object is compiled once per store and its cache key computed
# once, so each message pays only for binding its values.
_GET = select(payments).where(payments.c.order_id == bindparam("order_id"),
                              payments.c.kind == bindparam("kind"))
_ADD = insert(payments)
_ENTRIES = (select(payments).where(payments.c.order_id == bindparam("order_id"))
            .order_by(payments.c.kind))


class PaymentRepository:
    """The payment ledger (table ``payments``), seen from the transaction `tx`."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def get(self, order_id: str, kind: Kind) -> LedgerEntry | None:
        """The order's charge or refund row, if any."""
        row = (await self.tx.execute(_GET, {"order_id": order_id, "kind": kind})).first()
        return None if row is None else _entry(row)

    async def add(self, entry: LedgerEntry) -> None:
        """Insert a row; ``sqlalchemy.exc.IntegrityError`` (rolling the message back) if
        the order has one of that kind already."""
        await self.tx.execute(_ADD, {
            "order_id": entry.order_id, "kind": entry.kind, "status": entry.status,
            "amount": entry.amount, "currency": entry.currency, "reference": entry.reference,
            "note": entry.note, "created_at": entry.created_at})

    async def entries(self, order_id: str) -> list[LedgerEntry]:
        """Every row of the order."""
        return [_entry(r) for r in await self.tx.execute(_ENTRIES, {"order_id": order_id})]


def _entry(row: Row) -> LedgerEntry:
    return LedgerEntry(order_id=row.order_id, kind=row.kind, status=row.status,
                       amount=row.amount, currency=row.currency, reference=row.reference,
                       note=row.note, created_at=row.created_at)
