"""Saga transitions per second: in-memory store, SQLite and PostgreSQL (the SQLAlchemy
store and the raw asyncpg store), beside the ceiling of a plain asyncpg loop doing the
same commits (one UPDATE of a state row plus one INSERT of an outbox row per
transition), all measured in the same run.

    .venv/bin/python benchmarks/engine.py [--sagas 200] [--events 10] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import PG, describe, interleave, run_main, summary

from core_saga import (
    BehaviorContext,
    Envelope,
    Event,
    Message,
    Saga,
    SagaState,
    State,
    SystemClock,
    Topology,
)
from core_saga.extension import Endpoint, SagaHandler
from core_saga.persistence import AsyncpgStore, MemoryStore, SagaStore, SqlStore


class Begin(Message):
    message_namespace = "bench"
    id: str


class Flip(Message):
    message_namespace = "bench"
    id: str
    n: int


class Notified(Message):
    message_namespace = "bench"
    id: str
    n: int


class Toggle(SagaState):
    flips: int = 0


def _count(ctx: BehaviorContext[Toggle, Flip]) -> None:
    ctx.saga.flips += 1


def _notify(ctx: BehaviorContext[Toggle, Flip]) -> Notified:
    return Notified(id=ctx.saga.correlation_id, n=ctx.message.n)


class ToggleSaga(Saga[Toggle]):
    """Every Flip moves the instance between Up and Down and sends one command."""

    up = State(terminal=True)
    down = State(terminal=True)
    begin = Event(Begin, correlate_by=lambda m: m.id)
    flip = Event(Flip, correlate_by=lambda m: m.id)

    def define(self) -> None:
        self.initially(self.when(self.begin).transition_to(self.up))
        self.during(self.up, self.when(self.flip).then(_count)
                    .send("sink", _notify).transition_to(self.down))
        self.during(self.down, self.when(self.flip).then(_count)
                    .send("sink", _notify).transition_to(self.up))


class Timing:
    """Hooks a run calls around its timed part (after its set-up and warm-up), so that
    a caller can measure over the same window (ceiling.py's CPU per transition)."""

    def start(self) -> None:
        """The clock starts."""

    def stop(self) -> None:
        """The clock stops."""


WARMUP = 8
"""Transitions each connection makes before the clock starts when a run warms up:
PostgreSQL plans a prepared statement afresh for each of its first five executions on
a connection and then settles on a generic plan, and a run's connections are new."""


async def _timed(work: Callable[[], Awaitable[Any]], transitions: int,
                 timing: Timing | None) -> float:
    """Run `work` on the clock: `transitions` per second."""
    if timing is not None:
        timing.start()
    started = time.perf_counter()
    await work()
    elapsed = time.perf_counter() - started
    if timing is not None:
        timing.stop()
    return transitions / elapsed


async def run_engine(store: SagaStore, sagas: int, events: int, concurrency: int,
                     warmup: int = 0, timing: Timing | None = None) -> float:
    """Transitions per second: `sagas` instances, `events` flips each, `concurrency`
    instances processed at once (each instance's events in order). `warmup`: first,
    `concurrency` instances of their own make that many flips each, all at once, so
    that every connection of the store's pool has run the statements."""
    endpoint = Endpoint("toggle", [SagaHandler(ToggleSaga())], store=store,
                        clock=SystemClock(), routes=Topology().routes)
    ids = [uuid.uuid4().hex for _ in range(sagas)]
    for cid in ids:
        await endpoint.process(Envelope(Begin(id=cid)))
    if warmup:
        warm = [f"warm-{uuid.uuid4().hex}" for _ in range(concurrency)]
        await asyncio.gather(*(endpoint.process(Envelope(Begin(id=cid))) for cid in warm))
        for n in range(warmup):
            await asyncio.gather(*(endpoint.process(Envelope(Flip(id=cid, n=n)))
                                   for cid in warm))
    queue: asyncio.Queue[str] = asyncio.Queue()
    for cid in ids:
        queue.put_nowait(cid)

    async def worker() -> None:
        while not queue.empty():
            cid = queue.get_nowait()
            for n in range(events):
                await endpoint.process(Envelope(Flip(id=cid, n=n)))

    return await _timed(lambda: asyncio.gather(*(worker() for _ in range(concurrency))),
                        sagas * events, timing)


async def run_engine_batched(store: SagaStore, sagas: int, events: int, concurrency: int,
                             batch: int = 10, warmup: int = 0,
                             timing: Timing | None = None) -> float:
    """Transitions per second with batched commits: the instances in groups of `batch`,
    `concurrency` groups processed at once, each group's n-th flips committed together
    (:meth:`Endpoint.process_batch`, one transaction for the batch, as the worker does
    with one receive of up to ten messages). `warmup` as in :func:`run_engine`, in
    batches."""
    endpoint = Endpoint("toggle", [SagaHandler(ToggleSaga())], store=store,
                        clock=SystemClock(), routes=Topology().routes)
    ids = [uuid.uuid4().hex for _ in range(sagas)]
    for start in range(0, sagas, batch):
        await endpoint.process_batch([Envelope(Begin(id=cid))
                                      for cid in ids[start:start + batch]])
    if warmup:
        warm = [[f"warm-{uuid.uuid4().hex}" for _ in range(batch)]
                for _ in range(concurrency)]
        await asyncio.gather(*(endpoint.process_batch([Envelope(Begin(id=cid))
                                                       for cid in group]) for group in warm))
        for n in range(warmup):
            await asyncio.gather(*(endpoint.process_batch(
                [Envelope(Flip(id=cid, n=n)) for cid in group]) for group in warm))
    groups: asyncio.Queue[list[str]] = asyncio.Queue()
    for start in range(0, sagas, batch):
        groups.put_nowait(ids[start:start + batch])

    async def worker() -> None:
        while not groups.empty():
            group = groups.get_nowait()
            for n in range(events):
                await endpoint.process_batch([Envelope(Flip(id=cid, n=n)) for cid in group])

    return await _timed(lambda: asyncio.gather(*(worker() for _ in range(concurrency))),
                        sagas * events, timing)


async def run_ceiling(sagas: int, events: int, concurrency: int, warmup: int = 0,
                      timing: Timing | None = None) -> float:
    """Transitions per second of the hand-written loop: `concurrency` connections, each
    taking whole instances off a shared queue and committing `events` transitions on
    each (UPDATE the state row, INSERT an outbox row, one transaction per transition).
    `warmup`: first, each connection makes that many transitions on a row of its own."""
    schema = f"ceil_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        await admin.execute(f"CREATE TABLE {schema}.state (id text PRIMARY KEY, "
                            "state text NOT NULL, version int NOT NULL, data text NOT NULL)")
        await admin.execute(f"CREATE TABLE {schema}.outbox (id bigserial PRIMARY KEY, "
                            "message_id text NOT NULL, destination text NOT NULL, "
                            "body text NOT NULL, created_at timestamptz NOT NULL)")
        ids = [uuid.uuid4().hex for _ in range(sagas)]
        await admin.executemany(f"INSERT INTO {schema}.state VALUES ($1, 'Up', 1, '{{}}')",
                                [(i,) for i in ids])
        conns = [await asyncpg.connect(PG, server_settings={"search_path": schema})
                 for _ in range(concurrency)]
        queue: asyncio.Queue[str] = asyncio.Queue()
        for cid in ids:
            queue.put_nowait(cid)

        async def transition(conn: Any, cid: str, n: int) -> None:
            async with conn.transaction():
                await conn.execute(
                    "UPDATE state SET state = $2, version = version + 1, data = $3 "
                    "WHERE id = $1",
                    cid, "Down" if n % 2 == 0 else "Up", f'{{"flips": {n + 1}}}')
                await conn.execute(
                    "INSERT INTO outbox (message_id, destination, body, created_at) "
                    "VALUES ($1, 'sink', $2, now())",
                    uuid.uuid4().hex, f'{{"id": "{cid}", "n": {n}}}')

        async def warm(conn: Any) -> None:
            cid = f"warm-{uuid.uuid4().hex}"
            await conn.execute("INSERT INTO state VALUES ($1, 'Up', 1, '{}')", cid)
            for n in range(warmup):
                await transition(conn, cid, n)

        async def worker(conn: Any) -> None:
            while not queue.empty():
                cid = queue.get_nowait()
                for n in range(events):
                    await transition(conn, cid, n)

        if warmup:
            await asyncio.gather(*(warm(c) for c in conns))
        rate = await _timed(lambda: asyncio.gather(*(worker(c) for c in conns)),
                            sagas * events, timing)
        for conn in conns:
            await conn.close()
        return rate
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()


async def _fresh_pg(concurrency: int) -> SqlStore:
    store = SqlStore.from_url(PG.replace("postgresql://", "postgresql+asyncpg://"),
                              schema=f"bench_{uuid.uuid4().hex[:8]}", pool_size=concurrency)
    await store.create_schema()
    return store


async def _fresh_pg_asyncpg(concurrency: int) -> AsyncpgStore:
    store = AsyncpgStore.from_url(PG, schema=f"bench_{uuid.uuid4().hex[:8]}",
                                  pool_size=concurrency)
    await store.create_schema()
    return store


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sagas", type=int, default=200)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(describe())
    print(f"parameters: {args.sagas} sagas x {args.events} transitions, "
          f"concurrency {args.concurrency}, {args.repeats} repeats\n")

    async def memory() -> float:
        return await run_engine(MemoryStore(), args.sagas, args.events, args.concurrency)

    async def sqlite() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            store = SqlStore.from_url(f"sqlite+aiosqlite:///{tmp}/bench.db")
            await store.create_schema()
            try:
                return await run_engine(store, args.sagas, args.events, args.concurrency)
            finally:
                await store.close()

    async def postgres() -> float:
        store = await _fresh_pg(args.concurrency)
        try:
            return await run_engine(store, args.sagas, args.events, args.concurrency)
        finally:
            await store.drop_schema()
            await store.close()

    async def postgres_asyncpg() -> float:
        store = await _fresh_pg_asyncpg(args.concurrency)
        try:
            return await run_engine(store, args.sagas, args.events, args.concurrency)
        finally:
            await store.drop_schema()
            await store.close()

    async def ceiling() -> float:
        return await run_ceiling(args.sagas, args.events, args.concurrency)

    runs: dict[str, Callable[[], Awaitable[float]]] = {
        "engine, in-memory store": memory, "engine, SQLite (WAL)": sqlite,
        "engine, PostgreSQL (SQLAlchemy store)": postgres,
        "engine, PostgreSQL (asyncpg store)": postgres_asyncpg,
        "asyncpg loop (ceiling)": ceiling,
    }
    results = await interleave(runs, args.repeats)
    print("transitions per second")
    for name, values in results.items():
        print(f"  {name:38s} {summary(values)}")
    ceiling_median = statistics.median(results["asyncpg loop (ceiling)"])
    print()
    for store in ("SQLAlchemy store", "asyncpg store"):
        ratio = statistics.median(results[f"engine, PostgreSQL ({store})"]) / ceiling_median
        print(f"PostgreSQL engine ({store}) / asyncpg ceiling = {ratio:.2f}")


if __name__ == "__main__":
    run_main(main())
