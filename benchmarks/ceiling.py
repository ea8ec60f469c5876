"""The raw PostgreSQL ceiling: how many saga-shaped commits a plain asyncpg loop makes per
second at 1, 8 and 32 connections, and how close the engine on the raw asyncpg store
(:class:`core_saga.persistence.AsyncpgStore`) comes to it at the same concurrencies.

One transition of the ceiling is one transaction on one connection: BEGIN, one UPDATE of
a state row, one INSERT of an outbox row, COMMIT (four round trips, statements prepared
by asyncpg's cache). One transition of the engine is the ``ToggleSaga`` of
``benchmarks/engine.py``: one event moves an instance between two states and sends one
command (inbox claim, load, update, history and outbox in one transaction). Each
connection (or engine task) works on its own instances, so no row is contended.

Every run gets a fresh PostgreSQL schema, dropped afterwards. The variants interleave
within each repeat, so load drifts on a shared machine hit all of them.

    .venv/bin/python benchmarks/ceiling.py [--sagas 160] [--events 10] \
        [--concurrency 1,8,32] [--repeats 3] [--no-engine]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import PG, describe, int_list, interleave, summary
from engine import run_ceiling, run_engine

from core_saga.persistence import AsyncpgStore

TARGET = 0.6
"""The engine on the asyncpg store should reach this share of the ceiling."""


async def run_asyncpg_engine(sagas: int, events: int, concurrency: int) -> float:
    """The engine's transitions per second on a fresh AsyncpgStore with `concurrency`
    connections and `concurrency` instances processed at once."""
    store = AsyncpgStore.from_url(PG, schema=f"ceng_{uuid.uuid4().hex[:10]}",
                                  pool_size=concurrency)
    await store.create_schema()
    try:
        # Open the connections before the clock starts, as the ceiling does.
        async def warm() -> None:
            async with store.transaction():
                await asyncio.sleep(0.01)

        await asyncio.gather(*(warm() for _ in range(concurrency)))
        return await run_engine(store, sagas, events, concurrency)
    finally:
        await store.drop_schema()
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sagas", type=int, default=160,
                        help="instances (state rows) per run (default 160)")
    parser.add_argument("--events", type=int, default=10,
                        help="transitions per instance (default 10)")
    parser.add_argument("--concurrency", default=[1, 8, 32],
                        type=int_list("1,8,32", at_least=1,
                                      problem="concurrencies must be 1 or more"),
                        help="comma-separated connection counts (default 1,8,32)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-engine", action="store_true",
                        help="measure the ceiling only, not the engine beside it")
    args = parser.parse_args()
    if args.sagas < max(args.concurrency):
        parser.error("--sagas must be at least the largest concurrency")
    print(describe(("asyncpg", "pydantic", "orjson")))
    print(f"parameters: {args.sagas} instances x {args.events} transitions per run, "
          f"concurrency {','.join(map(str, args.concurrency))}, {args.repeats} repeats, "
          f"engine {'off' if args.no_engine else 'on (AsyncpgStore)'}; "
          f"PostgreSQL {PG.rpartition('@')[2]}\n")

    runs: dict[tuple[str, int], Callable[[], Awaitable[float]]] = {}
    for level in args.concurrency:
        runs[("ceiling", level)] = functools.partial(
            run_ceiling, args.sagas, args.events, level)
        if not args.no_engine:
            runs[("engine", level)] = functools.partial(
                run_asyncpg_engine, args.sagas, args.events, level)
    results = await interleave(runs, args.repeats)

    print("transitions per second")
    for level in args.concurrency:
        print(f"  asyncpg loop (ceiling), {level:3d} connections   "
              f"{summary(results[('ceiling', level)])}")
        if not args.no_engine:
            print(f"  engine, AsyncpgStore,   {level:3d} connections   "
                  f"{summary(results[('engine', level)])}")
    if args.no_engine:
        return
    print()
    for level in args.concurrency:
        ratio = (statistics.median(results[("engine", level)])
                 / statistics.median(results[("ceiling", level)]))
        verdict = "met" if ratio >= TARGET else "missed"
        print(f"engine / ceiling at {level:3d} connections = {ratio:.2f} "
              f"(target ≥ {TARGET}: {verdict})")


if __name__ == "__main__":
    asyncio.run(main())
