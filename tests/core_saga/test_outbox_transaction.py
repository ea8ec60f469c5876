"""Sending from outside a handler: rows and messages commit together, or neither."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Column, MetaData, Numeric, String, Table, insert, select

from core_saga import ConsumeContext, Consumer, Message, Outbox
from core_saga.extension import OutboxDispatcher
from core_saga.persistence import AsyncpgStore, SqlStore
from core_saga.testing import SagaTestHarness
from core_saga.transports import InMemoryTransport

tables = MetaData()
orders = Table("client_orders", tables, Column("order_id", String(50), primary_key=True),
               Column("amount", Numeric(12, 2), nullable=False))


class OrderPlaced(Message):
    order_id: str
    amount: Decimal


class Seen(Consumer[OrderPlaced]):
    def __init__(self) -> None:
        self.ids: list[str] = []

    async def consume(self, ctx: ConsumeContext[OrderPlaced]) -> None:
        self.ids.append(ctx.message.order_id)


async def test_rows_and_messages_commit_together(sql_store: SqlStore | AsyncpgStore) -> None:
    await sql_store.create_tables(tables)
    seen = Seen()
    async with SagaTestHarness(store=sql_store) as h:
        h.add_consumer(seen, queue="orders")
        outbox = h.outbox()
        async with outbox.transaction() as tx:
            await tx.execute(insert(orders).values(order_id="o-1", amount=Decimal("9.99")))
            envelope = tx.publish(OrderPlaced(order_id="o-1", amount=Decimal("9.99")),
                                  correlation_id="o-1")
        with pytest.raises(RuntimeError):
            async with outbox.transaction() as tx:
                await tx.execute(insert(orders).values(order_id="o-2", amount=1))
                tx.send("orders", OrderPlaced(order_id="o-2", amount=Decimal(1)))
                raise RuntimeError("the request was invalid after all")
        await h.drain()
        assert seen.ids == ["o-1"]
        assert envelope.correlation_id == "o-1"
        async with sql_store.transaction() as check:
            assert (await check.scalars(select(orders.c.order_id))).all() == ["o-1"]
        assert await sql_store.pending_outbox() == []


async def test_without_a_dispatcher_the_pollers_send_what_was_committed(
        sqlite_store: SqlStore) -> None:
    await sqlite_store.create_tables(tables)
    transport = InMemoryTransport()
    async with Outbox(sqlite_store).transaction() as tx:
        await tx.execute(insert(orders).values(order_id="o-3", amount=3))
        tx.send("orders", OrderPlaced(order_id="o-3", amount=Decimal(3)))
    assert len(await sqlite_store.pending_outbox()) == 1
    # a worker's dispatcher on the same database (another process in production)
    from core_saga import SystemClock
    from core_saga.extension import TransportSink

    dispatcher = OutboxDispatcher(sqlite_store, {"send": TransportSink(transport)},
                                  SystemClock())
    assert await dispatcher.run_due() == 1
    assert len(await transport.receive("orders", max_messages=10, wait_seconds=0)) == 1
