"""Participant services for the article's saga: payment, inventory and shipping.

Each records what it did in `quickstart_ledger`, in the same transaction as its inbox
entry, so a side effect applied twice would show as two rows. Fault switches make the
failure paths easy to walk (the demo uses them):

- amount 13.00: the payment is declined;
- an order id ending in ``-404``: inventory is missing after payment (the saga refunds);
- an order id ending in ``-503``: the carrier is down, no shipment comes, the saga times
  out and refunds.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Integer, MetaData, Numeric, String, Table, insert

from core_saga import ConsumeContext, Consumer, Worker

from .article_saga import (
    AllocateInventory,
    ArticleOrderSaga,
    ArticleSettings,
    ChargePayment,
    CreateShipment,
    InventoryAllocated,
    InventoryUnavailable,
    PaymentFailed,
    PaymentSucceeded,
    RefundPayment,
    ShipmentCreated,
)

DECLINED = Decimal("13.00")

QUEUES = ("article-order-saga", "charge-payment", "allocate-inventory", "create-shipment")

metadata = MetaData()
ledger = Table("quickstart_ledger", metadata,
               Column("id", Integer, primary_key=True, autoincrement=True),
               Column("order_id", String(100), nullable=False, index=True),
               Column("kind", String(20), nullable=False),
               Column("amount", Numeric(12, 2), nullable=True))


async def record(ctx: ConsumeContext[Any], kind: str, amount: Decimal | None = None) -> None:
    """Write a ledger row in the message's own transaction."""
    await ctx.transaction.execute(insert(ledger).values(
        order_id=ctx.message.order_id, kind=kind, amount=amount))


class PaymentService(Consumer[ChargePayment]):
    """Charges the order, or declines it (fault switch: amount 13.00)."""

    async def consume(self, ctx: ConsumeContext[ChargePayment]) -> None:
        if ctx.message.amount == DECLINED:
            ctx.publish(PaymentFailed(order_id=ctx.message.order_id, error_code="declined"))
            return
        await record(ctx, "charge", ctx.message.amount)
        ctx.publish(PaymentSucceeded(order_id=ctx.message.order_id))


class RefundService(Consumer[RefundPayment]):
    """Refunds the order."""

    async def consume(self, ctx: ConsumeContext[RefundPayment]) -> None:
        await record(ctx, "refund", ctx.message.amount)


class InventoryService(Consumer[AllocateInventory]):
    """Reserves stock; order ids ending in ``-404`` find none."""

    async def consume(self, ctx: ConsumeContext[AllocateInventory]) -> None:
        if ctx.message.order_id.endswith("-404"):
            ctx.publish(InventoryUnavailable(order_id=ctx.message.order_id))
            return
        await record(ctx, "reserve")
        ctx.publish(InventoryAllocated(order_id=ctx.message.order_id))


class ShippingService(Consumer[CreateShipment]):
    """Creates a label; for order ids ending in ``-503`` the carrier is down."""

    async def consume(self, ctx: ConsumeContext[CreateShipment]) -> None:
        if ctx.message.order_id.endswith("-503"):
            await record(ctx, "carrier-down")
            return
        await record(ctx, "ship")
        ctx.publish(ShipmentCreated(order_id=ctx.message.order_id,
                                    tracking_id=f"TRK-{ctx.message.order_id}"))


def host_services(worker: Worker, settings: ArticleSettings | None = None) -> Worker:
    """Host the saga and every service on `worker` (every process of a deployment
    hosts the same set, so each builds the same publish topology)."""
    worker.add_saga(ArticleOrderSaga(settings), queue="article-order-saga")
    worker.add_consumer(PaymentService(), queue="charge-payment")
    worker.add_consumer(RefundService(), queue="charge-payment")
    worker.add_consumer(InventoryService(), queue="allocate-inventory")
    worker.add_consumer(ShippingService(), queue="create-shipment")
    return worker
