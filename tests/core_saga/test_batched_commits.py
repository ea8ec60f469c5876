"""Batched commits (the worker's default): the messages of one receive commit in one
transaction, each with its own inbox entry and outbox rows; a failing message rolls the
batch back and every message is then handled on its own, so it never takes its
neighbours' effects with it; an outage during a batch holds the messages; deletes come
only after the commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, update

from core_saga import (
    ConsumeContext,
    Consumer,
    Envelope,
    Message,
    SystemClock,
    Topology,
    Worker,
    WorkerSettings,
)
from core_saga.extension import ConsumerHandler, Endpoint, SagaHandler, decode_envelope
from core_saga.persistence import MemoryStore, SagaStore
from core_saga.persistence._memory import MemoryTransaction
from core_saga.transports import InMemoryTransport, ReceivedMessage, TransportMessage
from examples.quickstart.article_saga import (
    ArticleOrderSaga,
    ChargePayment,
    OrderSubmitted,
    PaymentSucceeded,
)

from ..conftest import pg_asyncpg_store, requires_postgres


class Job(Message):
    message_namespace = "t.batch"
    n: int


class Done(Message):
    message_namespace = "t.batch"
    n: int


class Jobs(Consumer[Job]):
    """Sends Done(n) for each Job(n); fails for the numbers in `failing`."""

    def __init__(self, failing: frozenset[int] = frozenset()) -> None:
        self.failing = failing
        self.runs: list[int] = []

    async def consume(self, ctx: ConsumeContext[Job]) -> None:
        self.runs.append(ctx.message.n)
        ctx.send("done", Done(n=ctx.message.n))
        if ctx.message.n in self.failing:
            raise RuntimeError(f"job {ctx.message.n} cannot be done")


def settings(**overrides: object) -> WorkerSettings:
    base: dict[str, object] = {"wait_time_seconds": 0, "max_deliveries": 3,
                               "redelivery_base_seconds": 0, "outbox_poll_seconds": 0.05,
                               "database_url": "memory://"}
    base.update(overrides)
    return WorkerSettings(**base)  # type: ignore[arg-type]


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0
                ) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached in {timeout} s: {what}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[None]:
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    try:
        yield
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 60)


async def queue_jobs(transport: InMemoryTransport, numbers: Sequence[int]) -> None:
    for start in range(0, len(numbers), 10):
        await transport.send_batch("jobs", [
            TransportMessage(Envelope(Job(n=n)).encode(), f"job-{n}", Job.message_urn)
            for n in numbers[start:start + 10]])


async def done_numbers(transport: InMemoryTransport) -> list[int]:
    found = []
    while True:
        taken = await transport.receive("done", max_messages=10, wait_seconds=0)
        if not taken:
            return sorted(found)
        for message in taken:
            envelope = decode_envelope(message.body)
            assert isinstance(envelope.message, Done)
            found.append(envelope.message.n)
        await transport.delete_batch("done", taken)


def endpoint(store: SagaStore) -> Endpoint:
    return Endpoint("orders", [SagaHandler(ArticleOrderSaga())], store=store,
                    clock=SystemClock(), routes=Topology().routes)


async def test_a_batch_commits_each_message_once_with_its_own_outbox_rows(
        store: SagaStore) -> None:
    orders = endpoint(store)
    submitted = [Envelope(OrderSubmitted(order_id=f"o-{n}", amount=Decimal(n + 1)))
                 for n in range(3)]
    # Two events for one instance in the same batch, and one message twice.
    paid = Envelope(PaymentSucceeded(order_id="o-1"))
    batch = [*submitted, paid, submitted[2]]
    results = await orders.process_batch(batch)
    assert [r.duplicate for r in results] == [False, False, False, False, True]
    assert [len(r.rows) for r in results] == [1, 1, 1, 1, 0]
    assert {r.rows[0].message_type for r in results[:3]} == {ChargePayment.message_urn}
    for n, state in ((0, "PaymentPending"), (1, "InventoryPending"), (2, "PaymentPending")):
        record = await store.get_instance("ArticleOrderSaga", f"o-{n}")
        assert record is not None and record.state == state
    history = await store.history("ArticleOrderSaga", "o-1")
    assert [(h.from_state, h.to_state) for h in history] == [
        ("Initial", "PaymentPending"), ("PaymentPending", "InventoryPending")]
    # The rows handed back are the committed ones, ids and all (to dispatch them).
    pending = await store.pending_outbox()
    assert sorted((r.id, r.message_id) for p in results for r in p.rows) == \
        sorted((r.id, r.message_id) for r in pending)
    # Handled again: every one is a duplicate now.
    again = await orders.process_batch(batch)
    assert all(r.duplicate for r in again)
    assert len(await store.pending_outbox()) == 4


async def test_a_batch_of_consumer_messages_claims_each_once(store: SagaStore) -> None:
    """A consumer's claim rides with the previous message's writes (asyncpg): a copy
    later in the same batch, or in a later one, is still a duplicate."""
    jobs = Jobs()
    consumer = Endpoint("jobs", [ConsumerHandler(jobs)], store=store, clock=SystemClock(),
                        routes=Topology().routes)
    first, second = Envelope(Job(n=1)), Envelope(Job(n=2))
    results = await consumer.process_batch([first, second, first, Envelope(Job(n=3))])
    assert [r.duplicate for r in results] == [False, False, True, False]
    assert [len(r.rows) for r in results] == [1, 1, 0, 1]
    assert sorted(r.message_type for r in await store.pending_outbox()) == \
        [Done.message_urn] * 3
    again = await consumer.process_batch([second, first])
    assert [r.duplicate for r in again] == [True, True]
    assert len(await store.pending_outbox()) == 3


async def test_a_failing_message_rolls_the_whole_batch_back(store: SagaStore) -> None:
    orders = endpoint(store)
    good = Envelope(OrderSubmitted(order_id="o-good", amount=Decimal(1)))
    # PaymentSucceeded for an order that does not exist: the saga faults it.
    bad = Envelope(PaymentSucceeded(order_id="o-nobody"))
    with pytest.raises(Exception, match=r"o-nobody|instance"):
        await orders.process_batch([good, bad])
    assert await store.get_instance("ArticleOrderSaga", "o-good") is None
    assert await store.pending_outbox() == []
    # Nothing of the batch was kept, so the good one is new on its own.
    assert not (await orders.process(good)).duplicate


async def test_a_failing_message_never_takes_its_neighbours_effects_with_it(
        store: SagaStore) -> None:
    transport = InMemoryTransport(visibility_timeout=5, max_receive_count=10)
    jobs = Jobs(failing=frozenset({3}))
    worker = Worker(settings(), store=store, transport=transport)
    worker.add_consumer(jobs, queue="jobs")
    await queue_jobs(transport, range(10))  # one receive takes all ten
    async with running(worker):
        await until(lambda: asyncio.sleep(0, len(transport.dead_letters("jobs")) == 1),
                    "the failing job dead-lettered")
        await until(lambda: asyncio.sleep(0, worker.handled == 9), "the others handled")
    # Each good job's effect exactly once; the failing one's never (its Done was rolled
    # back with it every time).
    assert await done_numbers(transport) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert transport.depth("jobs") == 0
    assert worker.failed == 3
    [error] = await store.list_errors()
    assert error.reason == "RuntimeError: job 3 cannot be done"
    assert jobs.runs.count(3) == 1 + 3  # in the batch, then once per delivery alone


class _DeleteAfterCommit(InMemoryTransport):
    """Checks, at each delete, that the message's instance is committed."""

    def __init__(self, store: SagaStore) -> None:
        super().__init__(visibility_timeout=5, max_receive_count=10)
        self.store = store
        self.deleted: list[str] = []
        self.delete_calls = 0

    async def delete_batch(self, queue: str, messages: Sequence[ReceivedMessage]) -> None:
        if queue == "orders":
            self.delete_calls += 1
            for message in messages:
                envelope = decode_envelope(message.body)
                assert isinstance(envelope.message, OrderSubmitted)
                order = envelope.message.order_id
                assert await self.store.get_instance("ArticleOrderSaga", order) is not None
                self.deleted.append(order)
        await super().delete_batch(queue, messages)


async def test_messages_are_deleted_after_their_batch_committed_in_one_call(
        store: SagaStore) -> None:
    transport = _DeleteAfterCommit(store)
    worker = Worker(settings(delete_linger_seconds=0), store=store, transport=transport)
    worker.add_saga(ArticleOrderSaga(), queue="orders")
    await transport.send_batch("orders", [
        TransportMessage(Envelope(OrderSubmitted(order_id=f"o-{n}", amount=Decimal(2)))
                         .encode(), f"m-{n}", OrderSubmitted.message_urn) for n in range(10)])
    async with running(worker):
        await until(lambda: asyncio.sleep(0, len(transport.deleted) == 10), "all deleted")
    assert sorted(transport.deleted) == sorted(f"o-{n}" for n in range(10))
    assert transport.delete_calls == 1
    assert transport.depth("charge-payment") == 10


class _DownStore(MemoryStore):
    """A MemoryStore whose database is unreachable while `down` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.refused = 0

    @asynccontextmanager
    async def transaction(self, *, readonly: bool = False
                          ) -> AsyncIterator[MemoryTransaction]:
        if self.down:
            self.refused += 1
            raise ConnectionRefusedError(111, "Connection refused")
        async with super().transaction(readonly=readonly) as tx:
            yield tx


async def test_an_outage_during_a_batched_commit_holds_its_messages(
        caplog: pytest.LogCaptureFixture) -> None:
    store = _DownStore()
    transport = InMemoryTransport(visibility_timeout=5, max_receive_count=10)
    worker = Worker(settings(outage_backoff_max_seconds=0.5), store=store,
                    transport=transport)
    worker.add_consumer(Jobs(), queue="jobs")
    await queue_jobs(transport, range(10))
    async with running(worker):
        await until(lambda: asyncio.sleep(0, worker.held == 10), "the batch held")
        assert not worker.store_health.up
        store.down = False
        await until(lambda: asyncio.sleep(0, worker.handled == 10), "handled after")
    assert worker.failed == 0
    assert transport.dead_letters("jobs") == []
    assert await done_numbers(transport) == list(range(10))


counters = MetaData()
counter = Table("batch_counter", counters, Column("name", String(20), primary_key=True),
                Column("value", Integer, nullable=False))


class Bump(Message):
    message_namespace = "t.batch"
    n: int


class Bumper(Consumer[Bump]):
    async def consume(self, ctx: ConsumeContext[Bump]) -> None:
        await ctx.transaction.execute(update(counter).where(counter.c.name == "hot")
                                      .values(value=counter.c.value + 1))


@pytest.mark.postgres
@requires_postgres
async def test_a_batch_does_not_queue_behind_another_transactions_locks() -> None:
    """A batch holds its locks to its commit, so it does not wait for others' either:
    behind a held row lock it gives up (and its messages go one by one, each waiting
    its turn as usual) instead of stalling the endpoint."""
    store = pg_asyncpg_store()
    await store.create_schema()
    await store.create_tables(counters)
    try:
        async with store.transaction() as tx:
            await tx.execute(insert(counter).values(name="hot", value=0))
        bumps = Endpoint("bumps", [ConsumerHandler(Bumper())], store=store,
                         clock=SystemClock(), routes=Topology().routes)
        async with store.transaction() as holder:
            await holder.execute(update(counter).values(value=100))  # holds the row
            with pytest.raises(Exception, match="lock"):
                await asyncio.wait_for(bumps.process_batch(
                    [Envelope(Bump(n=1)), Envelope(Bump(n=2))]), timeout=60)
        # The holder committed: one by one they go through.
        for n in (1, 2):
            assert not (await bumps.process(Envelope(Bump(n=n)))).duplicate
        async with store.transaction(readonly=True) as tx:
            assert await tx.scalar(select(counter.c.value)) == 102
    finally:
        await store.drop_schema()
        await store.close()
