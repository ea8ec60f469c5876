"""The order service's consumers: record the saga's verdict on the order."""

from __future__ import annotations

import logging

from core_saga import ConsumeContext, Consumer

from ..messages import OrderCanceled, OrderCompleted
from .repository import CANCELED, COMPLETED, OrderRepository

log = logging.getLogger("examples.order_to_cash.orders")


class OrderCompletedConsumer(Consumer[OrderCompleted]):
    """Marks the order Completed, with its tracking id."""

    async def consume(self, ctx: ConsumeContext[OrderCompleted]) -> None:
        event = ctx.message
        changed = await OrderRepository(ctx.transaction).set_outcome(
            event.order_id, status=COMPLETED, tracking_id=event.tracking_id, at=ctx.now)
        if not changed:
            log.warning("order %s: OrderCompleted for an unknown or already ended order",
                        event.order_id)


class OrderCanceledConsumer(Consumer[OrderCanceled]):
    """Marks the order Canceled, with the reason."""

    async def consume(self, ctx: ConsumeContext[OrderCanceled]) -> None:
        event = ctx.message
        changed = await OrderRepository(ctx.transaction).set_outcome(
            event.order_id, status=CANCELED, cancel_code=event.code, reason=event.reason,
            at=ctx.now)
        if not changed:
            log.warning("order %s: OrderCanceled for an unknown or already ended order",
                        event.order_id)
