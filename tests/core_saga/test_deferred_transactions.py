"""One message, one transaction, on PostgreSQL (raw asyncpg store): a saga message whose
instance needs no row lock is read outside any transaction, and its inbox claim,
instance write (with the version check), history and outbox rows go as one statement:
two round trips instead of four, with the same guarantees. The transaction begins only
when the handler runs another statement, and then holds all of it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from core_saga import (
    BehaviorContext,
    Concurrency,
    Envelope,
    Event,
    Message,
    Saga,
    SagaState,
    Schedule,
    State,
    SystemClock,
    Topology,
)
from core_saga.extension import Endpoint, SagaHandler
from core_saga.persistence import AsyncpgStore, InstanceRecord

pytestmark = pytest.mark.postgres


class Open(Message):
    message_namespace = "t.deferred"
    id: str


class Step(Message):
    message_namespace = "t.deferred"
    id: str
    n: int
    note: bool = False
    fail: bool = False


class Stepped(Message):
    message_namespace = "t.deferred"
    id: str
    n: int


class Counter(SagaState):
    steps: list[int] = []


notes_metadata = MetaData()
notes = Table("deferred_notes", notes_metadata,
              Column("id", Integer, primary_key=True, autoincrement=True),
              Column("saga", String(50), nullable=False),
              Column("n", Integer, nullable=False))

HOOK: list[Callable[[str, int], Awaitable[None]]] = []


async def _count(ctx: BehaviorContext[Counter, Step]) -> None:
    ctx.saga.steps = [*ctx.saga.steps, ctx.message.n]
    for hook in list(HOOK):
        await hook(ctx.saga.correlation_id, ctx.message.n)
    if ctx.message.note:
        await ctx.transaction.execute(insert(notes).values(saga=ctx.saga.correlation_id,
                                                           n=ctx.message.n))
    if ctx.message.fail:
        raise RuntimeError("the step failed")


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


class LockedCounterSaga(CounterSaga):
    concurrency = Concurrency.PESSIMISTIC

    def define(self) -> None:
        super().define()


@pytest.fixture
async def apg(make_pg_asyncpg_store: Callable[..., AsyncpgStore]
              ) -> AsyncIterator[AsyncpgStore]:
    # two connections: the message's, and one for another writer meanwhile
    made = make_pg_asyncpg_store(pool_size=2)
    await made.create_schema()
    await made.create_tables(notes_metadata)
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


def endpoint(store: AsyncpgStore, saga: Saga[Counter] | None = None) -> Endpoint:
    return Endpoint("counters", [SagaHandler(saga or CounterSaga())], store=store,
                    clock=SystemClock(), routes=Topology().routes)


def _is(statement: str, command: str) -> bool:
    return statement.strip().rstrip(";").upper() == command


async def opened(counters: Endpoint) -> str:
    cid = uuid.uuid4().hex
    assert not (await counters.process(Envelope(Open(id=cid)))).duplicate
    return cid


async def effects(store: AsyncpgStore, cid: str, saga: str = "CounterSaga"
                  ) -> tuple[int, list[int], int, int]:
    """The instance's version and steps, its history rows, its outbox rows."""
    record = await store.get_instance(saga, cid)
    assert record is not None
    outbox = [r for r in await store.pending_outbox() if r.correlation_id == cid]
    return (record.version, record.data["steps"], len(await store.history(saga, cid)),
            len(outbox))


async def test_a_saga_message_is_one_read_and_one_statement(
        apg: AsyncpgStore, round_trips: list[str]) -> None:
    counters = endpoint(apg)
    cid = uuid.uuid4().hex
    assert not (await counters.process(Envelope(Open(id=cid)))).duplicate
    assert len(round_trips) == 2, round_trips  # a new instance too
    round_trips.clear()
    step = Envelope(Step(id=cid, n=0))
    done = await counters.process(step)
    assert len(round_trips) == 2, round_trips
    assert not any(_is(q, "BEGIN") or _is(q, "COMMIT") for q in round_trips)
    assert not done.duplicate and len(done.rows) == 1 and done.rows[0].id > 0
    assert await effects(apg, cid) == (2, [0], 2, 1)
    assert [r.message_id for r in await apg.inbox_for([step.message_id])] == [step.message_id]
    # seen before: one read, nothing written
    round_trips.clear()
    assert (await counters.process(step)).duplicate
    assert len(round_trips) == 1
    assert await effects(apg, cid) == (2, [0], 2, 1)


async def test_a_delivery_claimed_by_another_meanwhile_writes_nothing(
        apg: AsyncpgStore) -> None:
    counters = endpoint(apg)
    cid = await opened(counters)
    step = Envelope(Step(id=cid, n=0))

    async def claim_it(correlation_id: str, n: int) -> None:
        # another delivery of the message claims it after this one read it, without
        # moving the instance on (so the version check alone would not stop this one)
        async with apg.transaction() as tx:
            assert await tx.inbox_claim("counters", step.message_id, datetime.now(UTC))

    HOOK.append(claim_it)
    assert (await counters.process(step)).duplicate
    assert await effects(apg, cid) == (1, [], 1, 0)


async def test_an_instance_moved_on_meanwhile_runs_again_from_a_fresh_read(
        apg: AsyncpgStore) -> None:
    counters = endpoint(apg)
    cid = await opened(counters)

    async def meddle(correlation_id: str, n: int) -> None:
        HOOK.clear()  # once
        async with apg.transaction() as tx:
            record = await tx.load("CounterSaga", correlation_id, lock=False)
            assert record is not None
            await tx.update(InstanceRecord(
                record.saga_type, record.correlation_id, record.state, record.version + 1,
                {"steps": [99]}, record.created_at, record.updated_at), record.version)

    HOOK.append(meddle)
    step = Envelope(Step(id=cid, n=0))
    done = await counters.process(step)
    assert not done.duplicate and len(done.rows) == 1
    # the first run's write matched nothing and took its claim, history and outbox row
    # with it; the second run saw the other writer's change
    assert await effects(apg, cid) == (3, [99, 0], 2, 1)
    assert (await counters.process(step)).duplicate


async def test_two_deliveries_at_once_land_once(
        make_pg_asyncpg_store: Callable[..., AsyncpgStore]) -> None:
    wide = make_pg_asyncpg_store(pool_size=4)
    await wide.create_schema()
    try:
        counters = endpoint(wide)
        cid = await opened(counters)
        both_read = asyncio.Barrier(2)

        async def together(correlation_id: str, n: int) -> None:
            await asyncio.wait_for(both_read.wait(), 10)

        HOOK.append(together)
        step = Envelope(Step(id=cid, n=0))
        results = await asyncio.gather(counters.process(step), counters.process(step))
        assert sorted(r.duplicate for r in results) == [False, True]
        assert await effects(wide, cid) == (2, [0], 2, 1)
    finally:
        HOOK.clear()
        await wide.drop_schema()
        await wide.close()


async def test_a_statement_of_the_handler_begins_the_transaction_that_holds_it_all(
        apg: AsyncpgStore, round_trips: list[str]) -> None:
    counters = endpoint(apg)
    cid = await opened(counters)
    round_trips.clear()
    assert not (await counters.process(Envelope(Step(id=cid, n=0, note=True)))).duplicate
    assert _is(round_trips[1], "BEGIN"), round_trips
    assert _is(round_trips[-1], "COMMIT")
    assert await effects(apg, cid) == (2, [0], 2, 1)

    async def noted() -> int:
        async with apg.transaction() as tx:
            return int(await tx.scalar(select(func.count()).select_from(notes)))

    assert await noted() == 1
    # the handler fails after its statement: its row goes with the rest
    with pytest.raises(RuntimeError, match="the step failed"):
        await counters.process(Envelope(Step(id=cid, n=1, note=True, fail=True)))
    assert await noted() == 1
    assert await effects(apg, cid) == (2, [0], 2, 1)


async def test_a_failure_before_any_statement_leaves_nothing_and_the_connection_usable(
        apg: AsyncpgStore) -> None:
    counters = endpoint(apg)
    cid = await opened(counters)
    failing = Envelope(Step(id=cid, n=0, fail=True))
    for _ in range(4):  # more than the pool holds: each connection comes back
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(counters.process(failing), 10)
    assert await effects(apg, cid) == (1, [], 1, 0)
    assert not (await counters.process(Envelope(Step(id=cid, n=1)))).duplicate
    assert await effects(apg, cid) == (2, [1], 2, 1)


async def test_a_saga_that_locks_its_instance_begins_first(
        apg: AsyncpgStore, round_trips: list[str]) -> None:
    counters = endpoint(apg, LockedCounterSaga())
    cid = await opened(counters)
    round_trips.clear()
    assert not (await counters.process(Envelope(Step(id=cid, n=0)))).duplicate
    assert _is(round_trips[0], "BEGIN"), round_trips
    assert "FOR UPDATE" in round_trips[1]
    assert await effects(apg, cid, "LockedCounterSaga") == (2, [0], 2, 1)



class Tick(Message):
    message_namespace = "t.deferred"
    id: str


class Stop(Message):
    message_namespace = "t.deferred"
    id: str


class Timed(SagaState):
    tick_token: str | None = None


async def _hooks(ctx: BehaviorContext[Timed, Stop]) -> None:
    for hook in list(HOOK):
        await hook(ctx.saga.correlation_id, 0)


class TimerSaga(Saga[Timed]):
    """Open schedules a tick; each Step schedules it again (the old timer goes); Stop
    cancels it."""

    waiting = State()
    done = State(terminal=True)
    open = Event(Open, correlate_by=lambda m: m.id)
    step = Event(Step, correlate_by=lambda m: m.id)
    stop = Event(Stop, correlate_by=lambda m: m.id)
    tick = Schedule(Tick, token_field="tick_token", delay=timedelta(hours=1))

    def define(self) -> None:
        self.initially(self.when(self.open).schedule(self.tick, lambda c: Tick(id="t"))
                       .transition_to(self.waiting))
        self.during(self.waiting,
                    self.when(self.step).schedule(self.tick, lambda c: Tick(id="t")),
                    self.when(self.stop).then(_hooks).unschedule(self.tick)
                    .transition_to(self.done),
                    self.when(self.tick.received).transition_to(self.done))


async def timers(store: AsyncpgStore, cid: str) -> list[str]:
    """The message ids of the instance's timers still to fire."""
    return [r.message_id for r in await store.pending_outbox() if r.correlation_id == cid]


async def test_cancelling_a_timer_goes_with_the_messages_writes(
        apg: AsyncpgStore, round_trips: list[str]) -> None:
    timed = Endpoint("timed", [SagaHandler(TimerSaga())], store=apg, clock=SystemClock(),
                     routes=Topology().routes)
    cid = uuid.uuid4().hex
    await timed.process(Envelope(Open(id=cid)))
    [first] = await timers(apg, cid)
    round_trips.clear()
    # rescheduled: the old timer is deleted and the new one written, in one statement
    assert not (await timed.process(Envelope(Step(id=cid, n=1)))).duplicate
    assert len(round_trips) == 2, round_trips
    [second] = await timers(apg, cid)
    assert second != first
    # a delivery claimed by another meanwhile: its delete is not made either
    stop = Envelope(Stop(id=cid))

    async def claim_it(correlation_id: str, n: int) -> None:
        HOOK.clear()
        async with apg.transaction() as tx:
            assert await tx.inbox_claim("timed", stop.message_id, datetime.now(UTC))

    HOOK.append(claim_it)
    assert (await timed.process(stop)).duplicate
    assert await timers(apg, cid) == [second]
    # cancelled for real: two round trips, the timer gone
    round_trips.clear()
    assert not (await timed.process(Envelope(Stop(id=cid)))).duplicate
    assert len(round_trips) == 2, round_trips
    assert await timers(apg, cid) == []
