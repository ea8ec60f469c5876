"""The order service: accept an order, store it and announce it in one transaction;
read it back."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from core_saga import Outbox

from ..messages import OrderLine, OrderSubmitted
from .models import OrderRequest
from .repository import SUBMITTED, OrderRecord, OrderRepository


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key was used before for a different request."""

    def __init__(self, key: str, order_id: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was used for another request "
                         f"(order {order_id})")
        self.key = key
        self.order_id = order_id


@dataclass(frozen=True)
class Submission:
    """What :meth:`OrderService.submit` did."""

    order_id: str
    created: bool
    """False when the idempotency key was seen before and the first order is returned."""


def fingerprint(request: OrderRequest) -> str:
    """A hash of the request, to tell a retry from a different order under the same key."""
    return hashlib.sha256(request.model_dump_json(by_alias=True).encode()).hexdigest()


class OrderService:
    """Places orders: the order row and ``OrderSubmitted`` commit together (through
    `outbox`), so an order is either stored and on its way to the saga, or neither."""

    def __init__(self, outbox: Outbox, *,
                 new_order_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        self.outbox = outbox
        self.new_order_id = new_order_id

    async def submit(self, request: OrderRequest, *, idempotency_key: str | None = None,
                     client: str = "") -> Submission:
        """Store and announce the order. With an `idempotency_key`, a repeat of the same
        request by the same `client` returns the first order; a different request under
        the same key raises :class:`IdempotencyKeyReused`. Keys are scoped to the
        client: another client's identical key is another key."""
        digest = fingerprint(request)
        for attempt in range(3):
            try:
                return await self._submit(request, idempotency_key, digest, client)
            except IntegrityError:
                # Two requests with one key raced: the loser reads the winner's order.
                if idempotency_key is None or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _submit(self, request: OrderRequest, key: str | None, digest: str,
                      client: str) -> Submission:
        async with self.outbox.transaction() as otx:
            repo = OrderRepository(otx)
            if key is not None:
                existing = await repo.find_by_idempotency_key(key, client)
                if existing is not None:
                    if existing.request_hash != digest:
                        raise IdempotencyKeyReused(key, existing.order_id)
                    return Submission(existing.order_id, created=False)
            lines = tuple(OrderLine(sku=line.sku, quantity=line.quantity,
                                    unit_price=line.unit_price) for line in request.lines)
            order = OrderRecord(
                order_id=self.new_order_id(), customer_id=request.customer_id,
                currency=request.currency, amount=request.amount, lines=lines,
                risk_flags=tuple(request.risk_flags), status=SUBMITTED, idempotency_key=key,
                request_hash=digest, created_at=otx.now, updated_at=otx.now, client_id=client)
            await repo.insert(order)
            otx.publish(OrderSubmitted(
                order_id=order.order_id, customer_id=order.customer_id, lines=lines,
                amount=order.amount, currency=order.currency, risk_flags=order.risk_flags),
                correlation_id=order.order_id)
        return Submission(order.order_id, created=True)

    async def get(self, order_id: str, *, client: str | None = None) -> OrderRecord | None:
        """The order, or None; with `client`, None also when another client placed it."""
        async with self.outbox.store.transaction() as tx:
            found = await OrderRepository(tx).get(order_id)
        if found is not None and client is not None and found.client_id != client:
            return None
        return found
