"""The article's saga and three participant services, for end-to-end runs over SQS.

Each service records its side effect in `e2e_effects` in the same transaction as its
inbox entry, so a side effect applied twice shows up as a count above one."""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core_saga"))

from article_saga import (
    AllocateInventory,
    ArticleOrderSaga,
    ChargePayment,
    CreateShipment,
    InventoryAllocated,
    PaymentSucceeded,
    RefundPayment,
    ShipmentCreated,
)

from core_saga import ConsumeContext, Consumer, Worker, WorkerSettings
from core_saga.persistence import SqlStore
from core_saga.transports import SqsTransport

metadata = MetaData()
effects = Table("e2e_effects", metadata,
                Column("id", Integer, primary_key=True, autoincrement=True),
                Column("order_id", String(100), nullable=False),
                Column("kind", String(20), nullable=False))


async def _effect(ctx: ConsumeContext[ChargePayment] | ConsumeContext[AllocateInventory]
                  | ConsumeContext[CreateShipment] | ConsumeContext[RefundPayment],
                  kind: str) -> None:
    await ctx.transaction.conn.execute(insert(effects).values(
        order_id=ctx.message.order_id, kind=kind))


class ChargeConsumer(Consumer[ChargePayment]):
    async def consume(self, ctx: ConsumeContext[ChargePayment]) -> None:
        await _effect(ctx, "charge")
        ctx.publish(PaymentSucceeded(order_id=ctx.message.order_id))


class RefundConsumer(Consumer[RefundPayment]):
    async def consume(self, ctx: ConsumeContext[RefundPayment]) -> None:
        await _effect(ctx, "refund")


class AllocateConsumer(Consumer[AllocateInventory]):
    async def consume(self, ctx: ConsumeContext[AllocateInventory]) -> None:
        await _effect(ctx, "reserve")
        ctx.publish(InventoryAllocated(order_id=ctx.message.order_id))


class ShipConsumer(Consumer[CreateShipment]):
    async def consume(self, ctx: ConsumeContext[CreateShipment]) -> None:
        await _effect(ctx, "ship")
        ctx.publish(ShipmentCreated(order_id=ctx.message.order_id,
                                    tracking_id=f"T-{ctx.message.order_id}"))


QUEUES = ("article-order-saga", "charge-payment", "allocate-inventory", "create-shipment")


async def build(settings: WorkerSettings) -> Worker:
    """Every process hosts every endpoint, so each builds the same publish topology."""
    store = SqlStore.from_url(settings.database_url, schema=settings.database_schema)
    transport = await SqsTransport.connect(settings.sqs())
    worker = Worker(settings, store=store, transport=transport)
    worker.add_saga(ArticleOrderSaga(), queue="article-order-saga")
    worker.add_consumer(ChargeConsumer(), queue="charge-payment")
    worker.add_consumer(RefundConsumer(), queue="charge-payment")
    worker.add_consumer(AllocateConsumer(), queue="allocate-inventory")
    worker.add_consumer(ShipConsumer(), queue="create-shipment")
    return worker
