"""The raw PostgreSQL ceiling: how many saga-shaped commits a plain asyncpg loop makes per
second at 1, 8 and 32 connections, and how close the engine on the raw asyncpg store
(:class:`core_saga.persistence.AsyncpgStore`) comes to it at the same concurrencies, one
transaction per message and with batched commits.

One transition of the ceiling is one transaction on one connection: BEGIN, one UPDATE of
a state row, one INSERT of an outbox row, COMMIT (four round trips, statements prepared
by asyncpg's cache). One transition of the engine is the ``ToggleSaga`` of
``benchmarks/engine.py``: one event moves an instance between two states and sends one
command — inbox entry, instance update, history row and outbox row in one transaction:
BEGIN, claim-and-load, one statement for the writes, COMMIT (four round trips too).
Batched: ten such messages (ten instances) in one transaction, as the worker commits one
receive of up to ten messages (``batch_commits``): BEGIN, the lock wait limit, one
statement claiming the ten messages and reading the ten instances, one statement for
all their writes, COMMIT (five round trips for ten transitions). Each connection (or
engine task) works on its own instances, so no row is contended.

Every run gets a fresh PostgreSQL schema, dropped afterwards. The variants interleave
within each repeat, so load drifts on a shared machine hit all of them.

    .venv/bin/python benchmarks/ceiling.py [--sagas 320] [--events 10] \
        [--concurrency 1,8,32] [--repeats 3] [--modes per-message,batched] [--no-engine]
    .venv/bin/python benchmarks/ceiling.py --profile 8 --sagas 80   # where the time goes
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import PG, describe, int_list, interleave, summary
from engine import run_ceiling, run_engine, run_engine_batched

from core_saga.persistence import AsyncpgStore

TARGET = 0.6
"""The engine on the asyncpg store, one transaction per message, should reach this
share of the ceiling."""
BATCHED_TARGET = 1.0
"""With batched commits it should pass the one-transaction-per-message ceiling."""


async def run_asyncpg_engine(sagas: int, events: int, concurrency: int,
                             batched: bool = False) -> float:
    """The engine's transitions per second on a fresh AsyncpgStore with `concurrency`
    connections and `concurrency` instances (`batched`: groups of ten instances, one
    transaction per group's transition) processed at once."""
    store = AsyncpgStore.from_url(PG, schema=f"ceng_{uuid.uuid4().hex[:10]}",
                                  pool_size=concurrency)
    await store.create_schema()
    try:
        # Open the connections before the clock starts, as the ceiling does.
        async def warm() -> None:
            async with store.transaction():
                await asyncio.sleep(0.01)

        await asyncio.gather(*(warm() for _ in range(concurrency)))
        if batched:
            return await run_engine_batched(store, sagas, events, concurrency)
        return await run_engine(store, sagas, events, concurrency)
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


MODES = ("per-message", "batched")


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
    parser.add_argument("--modes", type=_modes, default=list(MODES),
                        help="engine modes: per-message, batched (default both)")
    parser.add_argument("--no-engine", action="store_true",
                        help="measure the ceiling only, not the engine beside it")
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
          f"engine modes {','.join(modes) or 'none'} (AsyncpgStore; batched: 10 messages "
          f"a transaction); PostgreSQL {PG.rpartition('@')[2]}\n")

    runs: dict[tuple[str, int], Callable[[], Awaitable[float]]] = {}
    for level in args.concurrency:
        runs[("ceiling", level)] = functools.partial(
            run_ceiling, args.sagas, args.events, level)
        for mode in modes:
            runs[(mode, level)] = functools.partial(
                run_asyncpg_engine, args.sagas, args.events, level, mode == "batched")
    results = await interleave(runs, args.repeats)

    labels = {"ceiling": "asyncpg loop (ceiling)", "per-message": "engine, per message",
              "batched": "engine, batched commits"}
    print("transitions per second")
    for level in args.concurrency:
        for key in ("ceiling", *modes):
            print(f"  {labels[key]:24s} {level:3d} connections   "
                  f"{summary(results[(key, level)])}")
    if not modes:
        return
    print()
    for mode in modes:
        target = TARGET if mode == "per-message" else BATCHED_TARGET
        for level in args.concurrency:
            ratio = (statistics.median(results[(mode, level)])
                     / statistics.median(results[("ceiling", level)]))
            verdict = "met" if ratio >= target else "missed"
            print(f"engine ({mode}) / ceiling at {level:3d} connections = {ratio:.2f} "
                  f"(target ≥ {target}: {verdict})")
    print(f"load at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
