"""What the store guarantees: one transaction per message, no lost update under
concurrency, duplicates absorbed, committed messages never lost."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from core_saga import (
    Concurrency,
    Envelope,
    Event,
    Message,
    Saga,
    SagaState,
    State,
    Topology,
    VirtualClock,
)
from core_saga.extension import (
    SEND_KIND,
    DeliveryResult,
    Endpoint,
    OutboxDispatcher,
    SagaHandler,
    TransportSink,
)
from core_saga.persistence import AsyncpgStore, OutboxRow, SagaStore, SqlStore
from core_saga.transports import InMemoryTransport
from examples.quickstart.article_saga import ArticleOrderSaga, ChargePayment, OrderSubmitted


class Open(Message):
    message_namespace = "t.persist"
    id: str


class Add(Message):
    message_namespace = "t.persist"
    id: str
    n: int


class Counter(SagaState):
    total: int = 0
    seen: list[int] = []


class OptimisticCounter(Saga[Counter]):
    counting = State(terminal=True)
    open = Event(Open, correlate_by=lambda m: m.id)
    add = Event(Add, correlate_by=lambda m: m.id)

    def define(self) -> None:
        self.initially(self.when(self.open).transition_to(self.counting))
        self.during(self.counting, self.when(self.add).then(self._add))

    @staticmethod
    def _add(ctx) -> None:  # type: ignore[no-untyped-def]
        ctx.saga.total += ctx.message.n
        ctx.saga.seen = [*ctx.saga.seen, ctx.message.n]


class PessimisticCounter(OptimisticCounter):
    concurrency = Concurrency.PESSIMISTIC

    def define(self) -> None:
        super().define()


def endpoint(store: SagaStore, saga: Saga[Counter], clock: VirtualClock | None = None
             ) -> Endpoint:
    return Endpoint("counter", [SagaHandler(saga)], store=store, clock=clock or VirtualClock(),
                    routes=Topology().routes)


@pytest.mark.parametrize("maker", ["make_pg_store", "make_pg_asyncpg_store"])
@pytest.mark.parametrize("saga_type", [OptimisticCounter, PessimisticCounter])
async def test_fifty_concurrent_events_for_one_saga_are_all_applied_once(
        request: pytest.FixtureRequest, maker: str,
        saga_type: type[OptimisticCounter]) -> None:
    make: Callable[..., SqlStore | AsyncpgStore] = request.getfixturevalue(maker)
    store = make(pool_size=25)
    await store.create_schema()
    try:
        ep = endpoint(store, saga_type())
        await ep.process(Envelope(Open(id="c")))
        adds = [Envelope(Add(id="c", n=i)) for i in range(1, 51)]
        await asyncio.gather(*(ep.process(e) for e in adds))
        record = await store.get_instance(saga_type.model.name, "c")
        assert record is not None
        assert record.data["total"] == sum(range(1, 51))
        assert sorted(record.data["seen"]) == list(range(1, 51))
        assert record.version == 51
        assert len(await store.history(saga_type.model.name, "c")) == 51
    finally:
        await store.drop_schema()
        await store.close()


async def test_the_same_message_delivered_concurrently_is_applied_once(
        sql_store: SqlStore | AsyncpgStore) -> None:
    ep = endpoint(sql_store, OptimisticCounter())
    await ep.process(Envelope(Open(id="d")))
    duplicate = Envelope(Add(id="d", n=5))
    results = await asyncio.gather(*(ep.process(duplicate) for _ in range(8)))
    assert sorted(r.duplicate for r in results) == [False] + [True] * 7
    record = await sql_store.get_instance("OptimisticCounter", "d")
    assert record is not None and record.data["total"] == 5


async def test_a_failed_handler_leaves_nothing_behind(store: SagaStore) -> None:
    class Boom(Exception):
        pass

    class Exploding(Saga[Counter]):
        counting = State(terminal=True)
        open = Event(Open, correlate_by=lambda m: m.id)

        def define(self) -> None:
            self.initially(self.when(self.open)
                           .send("elsewhere", lambda c: Add(id="x", n=1))
                           .then(self._boom).transition_to(self.counting))

        @staticmethod
        def _boom(ctx) -> None:  # type: ignore[no-untyped-def]
            raise Boom("no")

    ep = Endpoint("e", [SagaHandler(Exploding())], store=store, clock=VirtualClock(),
                  routes=Topology().routes)
    message = Envelope(Open(id="z"))
    with pytest.raises(Boom):
        await ep.process(message)
    assert await store.get_instance("Exploding", "z") is None
    assert await store.pending_outbox() == []
    # The inbox entry rolled back too, so a redelivery is processed again.
    with pytest.raises(Boom):
        await ep.process(message)


CRASHING_WORKER = """
import asyncio, os, signal, sys
from decimal import Decimal
from examples.quickstart.article_saga import ArticleOrderSaga, OrderSubmitted
from core_saga import Envelope, SystemClock, Topology
from core_saga.extension import Endpoint, SagaHandler
from core_saga.persistence import {store_class}

async def main():
    store = {store_class}.from_url({url!r}, schema={schema!r})
    endpoint = Endpoint("article-order-saga", [SagaHandler(ArticleOrderSaga())], store=store,
                        clock=SystemClock(), routes=Topology().routes)
    await endpoint.process(Envelope(OrderSubmitted(order_id="k-1", amount=Decimal(5)),
                                    message_id="crash-1"))
    os.kill(os.getpid(), signal.SIGKILL)  # committed; dies before dispatching

asyncio.run(main())
"""


async def test_a_dispatcher_killed_between_commit_and_send_sends_later(
        sql_store: SqlStore | AsyncpgStore) -> None:
    url = (sql_store.url if isinstance(sql_store, AsyncpgStore)
           else sql_store.engine.url.render_as_string(hide_password=False))
    script = CRASHING_WORKER.format(tests=str(Path(__file__).parent), url=url,
                                    schema=sql_store.schema,
                                    store_class=type(sql_store).__name__)
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", textwrap.dedent(script)], timeout=60,
        capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    [row] = await sql_store.pending_outbox()
    assert row.message_type == ChargePayment.message_urn

    transport = InMemoryTransport()
    clock = VirtualClock()
    clock.advance(timedelta(days=365 * 10))  # well past the dead process's lease
    dispatcher = OutboxDispatcher(sql_store, {SEND_KIND: TransportSink(transport)}, clock)
    assert await dispatcher.run_due() == 1
    assert await dispatcher.run_due() == 0  # sent once
    [body] = transport.peek("charge-payment")
    assert b'"orderId":"k-1"' in body
    assert await sql_store.pending_outbox() == []


async def test_rows_leased_by_a_live_process_are_not_sent_twice(store: SagaStore) -> None:
    clock = VirtualClock()
    ep = Endpoint("article-order-saga", [SagaHandler(ArticleOrderSaga())], store=store,
                  clock=clock, routes=Topology().routes)
    processed = await ep.process(Envelope(OrderSubmitted(order_id="l-1", amount=1)))
    transport = InMemoryTransport()
    poller = OutboxDispatcher(store, {SEND_KIND: TransportSink(transport)}, clock)
    assert await poller.run_due() == 0  # the committing process holds the lease
    await poller.deliver(processed.rows)  # ...and delivers them itself
    clock.advance(timedelta(minutes=5))
    assert await poller.run_due() == 0
    assert transport.depth("charge-payment") == 1


class FlakySink:
    batch_size = 10

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.delivered: list[str] = []

    async def deliver(self, destination: str, rows: Sequence[OutboxRow]
                      ) -> dict[int, DeliveryResult]:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("broker unreachable")
        self.delivered.extend(r.message_id for r in rows)
        return {}


async def test_outbox_retries_a_passing_failure_for_as_long_as_it_lasts(
        store: SagaStore) -> None:
    """An outage of hours (AWS unreachable) ends with every row sent: no final give-up."""
    clock = VirtualClock()
    ep = Endpoint("article-order-saga", [SagaHandler(ArticleOrderSaga())], store=store,
                  clock=clock, routes=Topology().routes)
    processed = await ep.process(Envelope(OrderSubmitted(order_id="m-1", amount=1)))
    sink = FlakySink(failures=300)
    dispatcher = OutboxDispatcher(store, {SEND_KIND: sink}, clock)
    await dispatcher.deliver(processed.rows)
    for _ in range(400):  # ten hours, a pass every 90 s; the backoff is capped at a minute
        clock.advance(timedelta(seconds=90))
        await dispatcher.run_due()
        if sink.delivered:
            break
    assert sink.failures == 0
    assert sink.delivered == [processed.rows[0].message_id]
    assert await store.list_errors() == []
    assert await store.pending_outbox() == []


class RefusingSink:
    batch_size = 10

    async def deliver(self, destination: str, rows: Sequence[OutboxRow]
                      ) -> dict[int, DeliveryResult]:
        return {r.id: DeliveryResult.permanent("the body is too large") for r in rows}


async def test_outbox_keeps_a_permanent_failure_in_the_error_store(store: SagaStore) -> None:
    clock = VirtualClock()
    ep = Endpoint("article-order-saga", [SagaHandler(ArticleOrderSaga())], store=store,
                  clock=clock, routes=Topology().routes)
    processed = await ep.process(Envelope(OrderSubmitted(order_id="m-2", amount=1)))
    doomed = OutboxDispatcher(store, {SEND_KIND: RefusingSink()}, clock)
    await doomed.deliver(processed.rows)
    clock.advance(timedelta(hours=1))
    assert await doomed.run_due() == 0  # not retried
    [error] = await store.list_errors()
    assert error.error_type == "DeliveryFailed" and error.reason == "the body is too large"
    assert error.endpoint == "outbox:send:charge-payment"
    assert [r.message_id for r in await store.pending_outbox()] == [
        processed.rows[0].message_id]  # kept, marked failed, never silently dropped


async def test_inbox_and_outbox_retention_purge(store: SagaStore) -> None:
    clock = VirtualClock()
    ep = Endpoint("article-order-saga", [SagaHandler(ArticleOrderSaga())], store=store,
                  clock=clock, routes=Topology().routes)
    processed = await ep.process(Envelope(OrderSubmitted(order_id="p-1", amount=1)))
    await store.mark_dispatched([r.id for r in processed.rows], clock.now())
    later = clock.now() + timedelta(days=8)
    assert await store.purge(inbox_before=later, outbox_before=later) == (1, 1)
