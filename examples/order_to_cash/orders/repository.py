"""Data access of the order service, in one transaction: the endpoint's (an
:class:`core_saga.OutboxTransaction`) or a consumer's (``ctx.transaction``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, bindparam, insert, select, update

from core_saga import Row, Transaction

from ..messages import OrderLine
from ..storage import as_utc
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


# Built once: a statement object is compiled once per store and its cache key computed
# once, so each message pays only for binding its values.
_BY_ID = select(orders).where(orders.c.order_id == bindparam("key"))
# An idempotency key is scoped to the API client that used it.
_BY_IDEMPOTENCY_KEY = select(orders).where(orders.c.client_id == bindparam("client"),
                                           orders.c.idempotency_key == bindparam("key"))
_LINES = (select(order_lines).where(order_lines.c.order_id == bindparam("order_id"))
          .order_by(order_lines.c.line_no))
_INSERT = insert(orders)
_INSERT_LINES = insert(order_lines)
_SET_OUTCOME = (
    update(orders)
    .where(orders.c.order_id == bindparam("w_order_id"), orders.c.status == SUBMITTED)
    .values(status=bindparam("status"), cancel_code=bindparam("cancel_code"),
            reason=bindparam("reason"), tracking_id=bindparam("tracking_id"),
            updated_at=bindparam("updated_at")))


class OrderRepository:
    """Orders (tables ``orders`` and ``order_lines``), seen from the transaction `tx`."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def insert(self, order: OrderRecord) -> None:
        """Insert the order and its lines; ``sqlalchemy.exc.IntegrityError`` if the id
        or the idempotency key is taken."""
        await self.tx.execute(_INSERT, {
            "order_id": order.order_id, "idempotency_key": order.idempotency_key,
            "request_hash": order.request_hash, "customer_id": order.customer_id,
            "currency": order.currency, "amount": order.amount,
            "risk_flags": json.dumps(list(order.risk_flags)), "status": order.status,
            "cancel_code": order.cancel_code, "reason": order.reason,
            "tracking_id": order.tracking_id, "created_at": order.created_at,
            "updated_at": order.updated_at, "client_id": order.client_id})
        await self.tx.execute(_INSERT_LINES, [
            {"order_id": order.order_id, "line_no": number, "sku": line.sku,
             "quantity": line.quantity, "unit_price": line.unit_price}
            for number, line in enumerate(order.lines)])

    async def get(self, order_id: str) -> OrderRecord | None:
        """The order, or None."""
        return await self._load(_BY_ID, order_id)

    async def find_by_idempotency_key(self, key: str, client: str = "") -> OrderRecord | None:
        """The order `client` placed under the Idempotency-Key `key`, or None (a key is
        scoped to its client)."""
        return await self._load(_BY_IDEMPOTENCY_KEY, key, client=client)

    async def set_outcome(self, order_id: str, *, status: str, at: datetime,
                          cancel_code: str | None = None, reason: str | None = None,
                          tracking_id: str | None = None) -> bool:
        """Record how a Submitted order ended; False (nothing changed) when the order is
        unknown or has ended already."""
        result = await self.tx.execute(_SET_OUTCOME, {
            "w_order_id": order_id, "status": status, "cancel_code": cancel_code,
            "reason": reason, "tracking_id": tracking_id, "updated_at": at})
        return result.rowcount == 1

    async def _load(self, query: Select[Any], key: str, **more: str) -> OrderRecord | None:
        row = (await self.tx.execute(query, {"key": key, **more})).first()
        if row is None:
            return None
        lines = await self.tx.execute(_LINES, {"order_id": row.order_id})
        return _record(row, lines.all())


def _record(row: Row, lines: list[Row]) -> OrderRecord:
    return OrderRecord(
        order_id=row.order_id, customer_id=row.customer_id, currency=row.currency,
        amount=row.amount,
        lines=tuple(OrderLine(sku=r.sku, quantity=r.quantity,
                              unit_price=r.unit_price) for r in lines),
        risk_flags=tuple(json.loads(row.risk_flags)), status=row.status,
        idempotency_key=row.idempotency_key, request_hash=row.request_hash,
        created_at=as_utc(row.created_at), updated_at=as_utc(row.updated_at),
        cancel_code=row.cancel_code, reason=row.reason, tracking_id=row.tracking_id,
        client_id=row.client_id)

