"""A batch on PostgreSQL (raw asyncpg store) claims its messages and reads their
instances in one statement up front, then writes every message's instance, history and
outbox rows in one statement: a batch of ten is a handful of round trips, not one or
two a message, with the same effects and the same conflict checks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select

from core_saga import (
    BehaviorContext,
    Concurrency,
    ConcurrencyError,
    ConsumeContext,
    Consumer,
    Envelope,
    Event,
    Message,
    Saga,
    SagaState,
    State,
    SystemClock,
    Topology,
)
from core_saga.extension import ConsumerHandler, Endpoint, SagaHandler
from core_saga.persistence import AsyncpgStore, InstanceRecord
from core_saga.persistence._schema import outbox

pytestmark = pytest.mark.postgres


class Open(Message):
    message_namespace = "t.prefetch"
    id: str


class Step(Message):
    message_namespace = "t.prefetch"
    id: str
    n: int


class Stepped(Message):
    message_namespace = "t.prefetch"
    id: str
    n: int


class Counter(SagaState):
    steps: list[int] = []


HOOK: list[Callable[[str], Awaitable[None]]] = []


async def _count(ctx: BehaviorContext[Counter, Step]) -> None:
    ctx.saga.steps = [*ctx.saga.steps, ctx.message.n]
    for hook in HOOK:
        await hook(ctx.saga.correlation_id)


def _stepped(ctx: BehaviorContext[Counter, Step]) -> Stepped:
    return Stepped(id=ctx.saga.correlation_id, n=ctx.message.n)


class CounterSaga(Saga[Counter]):
    """Each Step is counted and answered with a Stepped command; state flips."""

    odd = State(terminal=True)
    even = State(terminal=True)
    open = Event(Open, correlate_by=lambda m: m.id)
    step = Event(Step, correlate_by=lambda m: m.id)

    def define(self) -> None:
        self.initially(self.when(self.open).transition_to(self.even))
        self.during(self.even, self.when(self.step).then(_count)
                    .send("out", _stepped).transition_to(self.odd))
        self.during(self.odd, self.when(self.step).then(_count)
                    .send("out", _stepped).transition_to(self.even))


@pytest.fixture
async def apg(make_pg_asyncpg_store: Callable[..., AsyncpgStore]
              ) -> AsyncIterator[AsyncpgStore]:
    made = make_pg_asyncpg_store(pool_size=4)
    await made.create_schema()
    yield made
    HOOK.clear()
    await made.drop_schema()
    await made.close()


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the process sends, in order."""
    sent: list[str] = []
    execute, _execute = asyncpg.Connection.execute, asyncpg.Connection._execute

    async def counted_execute(self: Any, query: str, *args: Any, **kw: Any) -> Any:
        if not args:
            sent.append(query)
        return await execute(self, query, *args, **kw)

    async def counted(self: Any, query: str, *args: Any, **kw: Any) -> Any:
        sent.append(query)
        return await _execute(self, query, *args, **kw)

    monkeypatch.setattr(asyncpg.Connection, "execute", counted_execute)
    monkeypatch.setattr(asyncpg.Connection, "_execute", counted)
    return sent


def endpoint(store: AsyncpgStore) -> Endpoint:
    return Endpoint("counters", [SagaHandler(CounterSaga())], store=store,
                    clock=SystemClock(), routes=Topology().routes)


async def test_a_batch_of_ten_is_five_round_trips_with_every_effect(
        apg: AsyncpgStore, round_trips: list[str]) -> None:
    counters = endpoint(apg)
    ids = [uuid.uuid4().hex for _ in range(8)]
    await counters.process_batch([Envelope(Open(id=i)) for i in ids])
    round_trips.clear()
    # eight instances, one of them stepped three times, and one message twice
    twice = Envelope(Step(id=ids[1], n=0))
    batch = [Envelope(Step(id=ids[0], n=0)), twice, Envelope(Step(id=ids[0], n=1)),
             *(Envelope(Step(id=i, n=0)) for i in ids[2:]), Envelope(Step(id=ids[0], n=2)),
             twice]
    results = await counters.process_batch(batch)
    # BEGIN, claims and reads (with the lock wait limit), every write (for the copy:
    # its claim), COMMIT
    assert len(round_trips) <= 5, round_trips
    assert not any("SET LOCAL" in q for q in round_trips)
    assert [r.duplicate for r in results] == [False] * 10 + [True]
    first = await apg.get_instance("CounterSaga", ids[0])
    assert first is not None and first.data["steps"] == [0, 1, 2] and first.version == 4
    assert first.state == "Odd"
    for i in ids[1:]:
        record = await apg.get_instance("CounterSaga", i)
        assert record is not None and record.state == "Odd" and record.version == 2
    history = await apg.history("CounterSaga", ids[0])
    assert [(h.from_state, h.to_state) for h in history][1:] == [
        ("Even", "Odd"), ("Odd", "Even"), ("Even", "Odd")]
    # each message's outbox row, with the id it was written under, in message order
    pending = {r.id: r for r in await apg.pending_outbox()}
    handed = [row for r in results for row in r.rows]
    assert len(handed) == 10 and all(row.id in pending for row in handed)
    assert [pending[row.id].message_id for row in handed] == [row.message_id for row in handed]
    assert [row.id for row in handed] == sorted(row.id for row in handed)
    # and all of it once: the batch again is all duplicates
    again = await counters.process_batch(batch)
    assert all(r.duplicate for r in again)


async def test_an_instance_changed_after_the_batch_read_it_fails_the_batch_whole(
        apg: AsyncpgStore) -> None:
    counters = endpoint(apg)
    ids = [uuid.uuid4().hex for _ in range(3)]
    await counters.process_batch([Envelope(Open(id=i)) for i in ids])

    async def meddle(correlation_id: str) -> None:
        # another worker moves the last instance on while the batch runs
        if correlation_id != ids[0]:
            return
        HOOK.clear()
        async with apg.transaction() as tx:
            record = await tx.load("CounterSaga", ids[2], lock=False)
            assert record is not None
            await tx.update(InstanceRecord(
                record.saga_type, record.correlation_id, record.state, record.version + 1,
                {"steps": [99]}, record.created_at, record.updated_at), record.version)

    HOOK.append(meddle)
    batch = [Envelope(Step(id=i, n=0)) for i in ids]
    with pytest.raises(ConcurrencyError):
        await counters.process_batch(batch)
    # nothing of the batch stayed: each message goes again, one by one, and lands once
    assert await apg.pending_outbox() == []
    for envelope in batch:
        assert not (await counters.process(envelope)).duplicate
    last = await apg.get_instance("CounterSaga", ids[2])
    assert last is not None and last.data["steps"] == [99, 0]
    assert len(await apg.pending_outbox()) == 3


notes_metadata = MetaData()
notes = Table("prefetch_notes", notes_metadata,
              Column("id", Integer, primary_key=True, autoincrement=True),
              Column("n", Integer, nullable=False))


class Noted(Consumer[Step]):
    """Writes a note row and sends Stepped for each Step; with `peek`, it first counts
    the outbox rows this transaction wrote so far (a statement on an engine table)."""

    def __init__(self, peek: bool = False) -> None:
        self.peek = peek
        self.seen: list[int] = []

    async def consume(self, ctx: ConsumeContext[Step]) -> None:
        if self.peek:
            self.seen.append(int(await ctx.transaction.scalar(
                select(func.count()).select_from(outbox))))
        await ctx.transaction.execute(insert(notes).values(n=ctx.message.n))
        ctx.send("out", Stepped(id=ctx.message.id, n=ctx.message.n))


async def test_consumers_own_statements_do_not_split_the_batchs_writes(
        apg: AsyncpgStore, round_trips: list[str]) -> None:
    await apg.create_tables(notes_metadata)
    consumer = Noted()
    noting = Endpoint("notes", [ConsumerHandler(consumer)], store=apg, clock=SystemClock(),
                      routes=Topology().routes)
    batch = [Envelope(Step(id="n", n=n)) for n in range(5)]
    round_trips.clear()
    results = await noting.process_batch(batch)
    assert not any(r.duplicate for r in results)
    # BEGIN, claims, five note inserts, the five outbox rows in one statement, COMMIT
    outbox_writes = [q for q in round_trips if "INSERT INTO outbox" in q]
    assert len(outbox_writes) == 1, round_trips
    assert len(round_trips) == 9, round_trips
    assert len(await apg.pending_outbox()) == 5
    async with apg.transaction() as tx:
        assert await tx.scalar(select(func.count()).select_from(notes)) == 5
    # a statement that names an engine table sees what the batch wrote before it
    peeking = Noted(peek=True)
    peeks = Endpoint("peeks", [ConsumerHandler(peeking)], store=apg, clock=SystemClock(),
                     routes=Topology().routes)
    await peeks.process_batch([Envelope(Step(id="p", n=n)) for n in range(3)])
    assert peeking.seen == [5, 6, 7]


class LockedCounterSaga(CounterSaga):
    concurrency = Concurrency.PESSIMISTIC

    def define(self) -> None:
        super().define()


async def test_a_batch_that_locks_its_instances_gives_up_behind_a_held_lock(
        apg: AsyncpgStore) -> None:
    """The batch's lock wait limit rides with its first statement, the one that locks
    the instances: behind another transaction's lock it fails soon (its messages then
    go one by one), not after the store's lock_timeout (10 s)."""
    locked = Endpoint("locked", [SagaHandler(LockedCounterSaga())], store=apg,
                      clock=SystemClock(), routes=Topology().routes)
    cid = uuid.uuid4().hex
    await locked.process(Envelope(Open(id=cid)))
    async with apg.transaction() as holder:
        assert await holder.load("LockedCounterSaga", cid, lock=True) is not None
        with pytest.raises(asyncpg.LockNotAvailableError):
            await asyncio.wait_for(locked.process_batch([Envelope(Step(id=cid, n=0))]), 5)
    assert not (await locked.process(Envelope(Step(id=cid, n=0)))).duplicate
