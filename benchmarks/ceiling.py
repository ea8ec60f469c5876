"""The raw PostgreSQL ceiling: how many saga-shaped commits a plain asyncpg loop makes per
second at 1, 8 and 32 connections, and how close the engine on the raw asyncpg store
(:class:`core_saga.persistence.AsyncpgStore`) comes to it at the same concurrencies, one
transaction per message and with batched commits.

One transition of the ceiling is one transaction on one connection: BEGIN, one UPDATE of
a state row, one INSERT of an outbox row, COMMIT (four round trips, statements prepared
by asyncpg's cache). One transition of the engine is the ``ToggleSaga`` of
``benchmarks/engine.py``: one event moves an instance between two states and sends one
command — inbox entry, instance update, history row and outbox row in one transaction:
one read (is the message in the inbox, and the instance), then one statement for the
writes, committed on its own (two round trips; ``AsyncpgStore.message_transaction``
sends no BEGIN unless a handler needs one).
Batched: ten such messages (ten instances) in one transaction, as the worker commits one
receive of up to ten messages (``batch_commits``): BEGIN, one statement setting the
lock wait limit, claiming the ten messages and reading the ten instances, one statement
for all their writes, COMMIT (four round trips for ten transitions). Each connection (or
engine task) works on its own instances, so no row is contended.

Every run gets a fresh PostgreSQL schema, dropped afterwards, and new connections; before
the clock starts, each connection makes a few transitions (``--warmup``, on both sides),
so that what is timed is the steady state of a long-running worker, not PostgreSQL
planning the statements afresh on each new connection. The variants interleave within
each repeat, so load drifts on a shared machine hit all of them.

    .venv/bin/python benchmarks/ceiling.py [--sagas 320] [--events 10] \
        [--concurrency 1,8,32] [--repeats 3] [--warmup 8] [--no-engine] [--cpu] [--waits] \
        [--modes per-message,batched,state-index]
    .venv/bin/python benchmarks/ceiling.py --profile 8 --sagas 80   # where the time goes
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import contextlib

import asyncpg
from _machine import PG, describe, int_list, interleave, run_main, summary
from engine import WARMUP, Timing, run_ceiling, run_engine, run_engine_batched

from core_saga.persistence import AsyncpgStore

TARGET = 0.6
"""The engine on the asyncpg store, one transaction per message, should reach this
share of the ceiling."""
BATCHED_TARGET = 1.0
"""With batched commits it should pass the one-transaction-per-message ceiling."""


STATE_INDEX = ("CREATE INDEX ix_saga_instances_state ON saga_instances "
               "(saga_type, state, updated_at)")
"""The index the instances table had until migration 0003 (state-index mode)."""


async def run_asyncpg_engine(sagas: int, events: int, concurrency: int,
                             batched: bool = False, state_index: bool = False,
                             warmup: int = 0, timing: Timing | None = None) -> float:
    """The engine's transitions per second on a fresh AsyncpgStore with `concurrency`
    connections and `concurrency` instances (`batched`: groups of ten instances, one
    transaction per group's transition) processed at once; `state_index` adds the
    index on the instances' state the schema once had; `warmup`: transitions each
    connection makes before the clock starts."""
    store = AsyncpgStore.from_url(PG, schema=f"ceng_{uuid.uuid4().hex[:10]}",
                                  pool_size=concurrency)
    await store.create_schema()
    try:
        if state_index:
            async with store.transaction() as tx:
                await tx.conn.execute(STATE_INDEX)
        # Open the connections before the clock starts, as the ceiling does.
        async def warm() -> None:
            async with store.transaction():
                await asyncio.sleep(0.01)

        await asyncio.gather(*(warm() for _ in range(concurrency)))
        if batched:
            return await run_engine_batched(store, sagas, events, concurrency,
                                            warmup=warmup, timing=timing)
        return await run_engine(store, sagas, events, concurrency, warmup=warmup,
                                timing=timing)
    finally:
        await store.drop_schema()
        await store.close()


async def profile(sagas: int, events: int, concurrency: int) -> None:
    """cProfile of one per-message engine run: the top lines by own time."""
    import cProfile
    import pstats

    print(describe(("asyncpg", "pydantic", "orjson")))
    profiler = cProfile.Profile()
    profiler.enable()
    rate = await run_asyncpg_engine(sagas, events, concurrency)
    profiler.disable()
    print(f"engine, per message, {concurrency} connections: {rate:.0f} transitions/s under "
          f"the profiler ({sagas} x {events} transitions)")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(14)


def postgres_cpu_seconds() -> float | None:
    """CPU seconds used so far by the PostgreSQL server on this machine: its live
    processes plus what its postmaster collected from the ended ones (connections that
    closed); None when /proc shows none (a server elsewhere, or not readable)."""
    total, found = 0, False
    proc = Path("/proc")
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        if not name.startswith("postgres"):
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if fields[1] == "1":  # the postmaster (its parent is init): its reaped children
            total += int(fields[13]) + int(fields[14])
        found = True
    return total / os.sysconf("SC_CLK_TCK") if found else None


WAIT_SAMPLE = ("SELECT CASE WHEN state = 'idle' THEN 'client (between transactions)' "
               "WHEN state LIKE 'idle in transaction%' THEN 'client (in a transaction)' "
               "WHEN wait_event IS NULL THEN 'running' "
               "ELSE 'waiting: ' || wait_event_type || '/' || wait_event END "
               "FROM pg_stat_activity WHERE backend_type = 'client backend' "
               "AND datname = current_database() AND pid <> pg_backend_pid()")
"""Where each other connection to the database is, as pg_stat_activity says: waiting
for the client's next statement (between transactions — where the engine's
one-statement transactions wait — or inside one), running, or waiting on a lock, the
WAL or I/O."""


class WaitSampler:
    """Samples :data:`WAIT_SAMPLE` every `period` seconds on a connection of its own
    while a run goes on: the mean number of connections in each place."""

    def __init__(self, period: float = 0.05) -> None:
        self.period = period
        self.counts: dict[str, int] = {}
        self.samples = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        conn = await asyncpg.connect(PG)
        try:
            while not self._stop.is_set():
                for (where,) in await conn.fetch(WAIT_SAMPLE):
                    self.counts[where] = self.counts.get(where, 0) + 1
                self.samples += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.period)
        finally:
            await conn.close()

    def stop(self) -> None:
        self._stop.set()

    def means(self) -> dict[str, float]:
        return {where: n / max(1, self.samples) for where, n in self.counts.items()}


@dataclass
class Measured:
    """One run: transitions per second, and CPU per transition (µs) of this process
    and of the PostgreSQL server (None when it cannot be read), over the run's timed
    part (set-up and warm-up excluded); with `waits`, where the connections were on
    average then (:class:`WaitSampler`)."""

    rate: float
    client_us: float
    server_us: float | None
    waits: dict[str, float] | None = None


class Window(Timing):
    """What a run's timed part cost: CPU of this process and of the server, read when
    the clock starts and when it stops, and with `waits` a :class:`WaitSampler` running
    in between."""

    def __init__(self, waits: bool) -> None:
        self.sampler = WaitSampler() if waits else None
        self.sampling: asyncio.Task[None] | None = None
        self.server: list[float | None] = []
        self.client: list[float] = []

    def start(self) -> None:
        if self.sampler is not None:
            self.sampling = asyncio.create_task(self.sampler.run())
        self.server.append(postgres_cpu_seconds())
        self.client.append(time.process_time())

    def stop(self) -> None:
        self.client.append(time.process_time())
        self.server.append(postgres_cpu_seconds())
        if self.sampler is not None:
            self.sampler.stop()

    async def measured(self, rate: float, transitions: int) -> Measured:
        if self.sampling is not None:
            await self.sampling
        (server, server_after), (client, client_after) = self.server, self.client
        server_us = None if server is None or server_after is None else \
            1e6 * (server_after - server) / transitions
        return Measured(rate, 1e6 * (client_after - client) / transitions, server_us,
                        self.sampler.means() if self.sampler else None)


def measured(run: Callable[..., Awaitable[float]], transitions: int, waits: bool = False
             ) -> Callable[[], Awaitable[Measured]]:
    """`run` (called with ``timing=``) measured over its timed part."""
    async def go() -> Measured:
        window = Window(waits)
        rate = await run(timing=window)
        return await window.measured(rate, transitions)
    return go


MODES = ("per-message", "batched", "state-index")
DEFAULT_MODES = ("per-message", "batched")


def _modes(text: str) -> list[str]:
    chosen = [m.strip() for m in text.split(",") if m.strip()]
    if not chosen or set(chosen) - set(MODES):
        raise argparse.ArgumentTypeError(f"choose from {','.join(MODES)}")
    return chosen


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sagas", type=int, default=320,
                        help="instances (state rows) per run (default 320: ten per "
                             "batch at 32 connections)")
    parser.add_argument("--events", type=int, default=10,
                        help="transitions per instance (default 10)")
    parser.add_argument("--concurrency", default=[1, 8, 32],
                        type=int_list("1,8,32", at_least=1,
                                      problem="concurrencies must be 1 or more"),
                        help="comma-separated connection counts (default 1,8,32)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=WARMUP,
                        help=f"transitions each connection makes, on both sides, before "
                             f"the clock starts (default {WARMUP}: past the five "
                             f"executions PostgreSQL plans afresh on a new connection; 0: "
                             f"none)")
    parser.add_argument("--modes", type=_modes, default=list(DEFAULT_MODES),
                        help="engine modes: per-message, batched, state-index (per message "
                             "with the index on the state the schema had before migration "
                             "0003; default: per-message,batched)")
    parser.add_argument("--no-engine", action="store_true",
                        help="measure the ceiling only, not the engine beside it")
    parser.add_argument("--cpu", action="store_true",
                        help="also print the CPU each transition cost this process and "
                             "the PostgreSQL server (read from /proc: a server on this "
                             "machine)")
    parser.add_argument("--waits", action="store_true",
                        help="also sample pg_stat_activity every 50 ms during each run "
                             "(on a connection of its own, in this process) and print "
                             "where the connections were on average: waiting for this "
                             "client, running, or waiting on a lock, the WAL or I/O")
    parser.add_argument("--profile", type=int, metavar="CONNECTIONS",
                        help="instead: profile (cProfile) one per-message engine run at "
                             "this many connections and print its top lines")
    args = parser.parse_args()
    if args.profile is not None:
        await profile(args.sagas, args.events, args.profile)
        return
    if args.sagas < max(args.concurrency):
        parser.error("--sagas must be at least the largest concurrency")
    modes = [] if args.no_engine else args.modes
    print(describe(("asyncpg", "pydantic", "orjson")))
    print(f"parameters: {args.sagas} instances x {args.events} transitions per run, "
          f"concurrency {','.join(map(str, args.concurrency))}, {args.repeats} repeats, "
          f"warm-up {args.warmup} transitions a connection, "
          f"engine modes {','.join(modes) or 'none'} (AsyncpgStore; batched: 10 messages "
          f"a transaction); PostgreSQL {PG.rpartition('@')[2]}\n")

    transitions = args.sagas * args.events
    runs: dict[tuple[str, int], Callable[[], Awaitable[Measured]]] = {}
    for level in args.concurrency:
        runs[("ceiling", level)] = measured(functools.partial(
            run_ceiling, args.sagas, args.events, level, args.warmup), transitions,
            args.waits)
        for mode in modes:
            runs[(mode, level)] = measured(functools.partial(
                run_asyncpg_engine, args.sagas, args.events, level, mode == "batched",
                mode == "state-index", args.warmup), transitions, args.waits)
    measurements = await interleave(runs, args.repeats)
    results = {key: [m.rate for m in found] for key, found in measurements.items()}

    labels = {"ceiling": "asyncpg loop (ceiling)", "per-message": "engine, per message",
              "batched": "engine, batched commits",
              "state-index": "engine, with state index"}
    print("transitions per second")
    for level in args.concurrency:
        for key in ("ceiling", *modes):
            print(f"  {labels[key]:24s} {level:3d} connections   "
                  f"{summary(results[(key, level)])}")
    if args.cpu:
        print("\nCPU per transition (µs, median; over the timed part): this process "
              "/ the PostgreSQL server")
        for level in args.concurrency:
            for key in ("ceiling", *modes):
                found = measurements[(key, level)]
                servers = [m.server_us for m in found if m.server_us is not None]
                server = f"{statistics.median(servers):7.0f}" if servers else "    n/a"
                print(f"  {labels[key]:24s} {level:3d} connections   "
                      f"{statistics.median(m.client_us for m in found):7.0f} / {server}")
    if args.waits:
        print("\nwhere the connections were (mean count over the samples of the timed "
              "part, median of the repeats)")
        for level in args.concurrency:
            for key in ("ceiling", *modes):
                waits = [m.waits or {} for m in measurements[(key, level)]]
                places = sorted({p for w in waits for p in w},
                                key=lambda p: -statistics.median(w.get(p, 0) for w in waits))
                text = ", ".join(f"{p} {statistics.median(w.get(p, 0) for w in waits):.1f}"
                                 for p in places[:4])
                print(f"  {labels[key]:24s} {level:3d} connections   {text}")
    if not modes:
        return
    print()
    for mode in modes:
        target = {"per-message": TARGET, "batched": BATCHED_TARGET}.get(mode)
        for level in args.concurrency:
            ratio = (statistics.median(results[(mode, level)])
                     / statistics.median(results[("ceiling", level)]))
            verdict = "" if target is None else \
                f" (target ≥ {target}: {'met' if ratio >= target else 'missed'})"
            print(f"engine ({mode}) / ceiling at {level:3d} connections = {ratio:.2f}"
                  f"{verdict}")
    print(f"load at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    run_main(main())
