"""Real SQS, modelled: the Order-to-Cash app in one worker process over a transport that
adds an SQS-like latency to every call, to predict orders per second per worker process
on AWS and the worker count for 100, 1,000 and 10,000 orders per second.

The transport is :class:`core_saga.transports.LatencyTransport` over the in-memory
transport: each call waits a latency drawn uniformly from its range (defaults: receive
10–20 ms, send and delete batches 5–15 ms, visibility changes 5–15 ms — SQS from EC2 in
the same region), then does the in-memory work. Everything else is the shipped
production path: the whole app (order service, saga, payment, inventory, shipping) in
one process, PostgreSQL through the raw asyncpg store, the worker's defaults (batched
commits, batching windows that follow the arrival rate, 20 s long polls). The load is
closed-loop with ``--window`` orders open (large enough to keep the process busy: the
script prints how busy its CPU was; well under 100% means the window or the latencies
bound the rate, not the process). The mix is ``order_to_cash.py``'s.

From the measured rate it prints the worker processes needed for 100, 1,000 and 10,000
orders per second (one process per core, the database able to keep up), the SQS calls
and database transactions per order, and what would bound the deployment on AWS: the
database's commits, and, for the orders handed to Step Functions (``--supervised``
share), the StartExecution, state-transition and SendTask* quotas.

    .venv/bin/python benchmarks/sqs_model.py [--orders 300] [--window 128] [--repeats 3] \
        [--receive 10-20ms] [--send 5-15ms] [--delete 5-15ms]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import PG, describe, run_main, summary
from engine import run_ceiling
from order_to_cash import run_in_memory

from core_saga import WorkerSettings
from core_saga.persistence import AsyncpgStore
from core_saga.transports import InMemoryTransport, Latency, LatencyTransport

TARGETS = (100, 1_000, 10_000)
"""Orders per second the prediction is made for."""
# Step Functions Standard quotas, per account and Region (US East (N. Virginia), US West
# (Oregon), Europe (Ireland); other Regions are lower): token buckets, soft quotas —
# the Step Functions developer guide's "Quotas" page.
START_EXECUTION = (1_300, 300)
"""StartExecution: bucket, refill per second (other Regions 800 / 150)."""
STATE_TRANSITIONS = (5_000, 1_500)
"""StateTransition: bucket, refill per second (other Regions 800 / 500)."""
SEND_TASK = (3_000, 500)
"""SendTaskSuccess / SendTaskFailure: bucket, refill per second (other Regions
1,500 / 300)."""
SUPERVISED_TRANSITIONS = 9
"""State transitions of a supervised order (benchmarks/cost.py measures 9.0)."""


class CountingStore(AsyncpgStore):
    """An AsyncpgStore that counts its transactions."""

    transactions = 0

    def transaction(self, *, readonly: bool = False) -> Any:
        CountingStore.transactions += 1
        return super().transaction(readonly=readonly)


@dataclass
class ModelRun:
    orders_per_second: float
    p50_ms: float
    p99_ms: float
    sqs_calls_per_order: float
    transactions_per_order: float
    cpu_share: float
    """Process CPU time over wall time (1.0 = one core busy)."""


async def run_model(orders: int, window: int, transport: LatencyTransport) -> ModelRun:
    store = CountingStore.from_url(PG, schema=f"model_{uuid.uuid4().hex[:10]}", pool_size=20)
    assert isinstance(store, CountingStore)
    settings = WorkerSettings(database_url="memory://", concurrency=64,
                              endpoint_concurrency=64, outbox_poll_seconds=0.5)
    try:
        CountingStore.transactions = 0
        mine = os.times()
        started = time.perf_counter()
        result = await run_in_memory(store, orders, window, timeout=900,
                                     transport=transport, settings=settings)
        wall = time.perf_counter() - started
        after = os.times()
        cpu = after.user + after.system - mine.user - mine.system
        return ModelRun(result.orders_per_second, result.p50_ms, result.p99_ms,
                        transport.total_calls / orders,
                        CountingStore.transactions / orders, cpu / wall)
    finally:
        await store.drop_schema()
        await store.close()


def main_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=300, help="orders per run (300)")
    parser.add_argument("--window", type=int, default=128,
                        help="orders open at once (default 128)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--receive", type=Latency.parse, default=Latency(0.010, 0.020),
                        help="ReceiveMessage latency, e.g. 10-20ms (default)")
    parser.add_argument("--send", type=Latency.parse, default=Latency(0.005, 0.015),
                        help="SendMessageBatch latency (default 5-15ms)")
    parser.add_argument("--delete", type=Latency.parse, default=Latency(0.005, 0.015),
                        help="DeleteMessageBatch (and visibility change) latency "
                             "(default 5-15ms)")
    parser.add_argument("--supervised", type=float, default=0.05,
                        help="share of orders handed to Step Functions (default 0.05)")
    args = parser.parse_args()
    if args.orders < 20 or args.window < 1 or not 0 <= args.supervised <= 1:
        parser.error("--orders ≥ 20, --window ≥ 1, --supervised between 0 and 1")
    return args


async def main(args: argparse.Namespace) -> None:
    print(describe(("asyncpg", "pydantic", "orjson")))
    print(f"parameters: {args.orders} orders per run, window {args.window}, {args.repeats} "
          f"repeats; latencies receive {args.receive}, send {args.send}, delete "
          f"{args.delete}; one worker process (concurrency 64) on PostgreSQL "
          f"{PG.rpartition('@')[2]}, shipped worker defaults otherwise\n")
    runs: list[ModelRun] = []
    ceilings: list[float] = []
    for _ in range(args.repeats):  # interleaved with this machine's commit ceiling
        transport = LatencyTransport(InMemoryTransport(), receive=args.receive,
                                     send=args.send, delete=args.delete, other=args.delete)
        runs.append(await run_model(args.orders, args.window, transport))
        ceilings.append(await run_ceiling(320, 10, 32))
    rate = statistics.median(r.orders_per_second for r in runs)
    calls = statistics.median(r.sqs_calls_per_order for r in runs)
    commits = statistics.median(r.transactions_per_order for r in runs)
    ceiling = statistics.median(ceilings)
    print("one worker process over modelled SQS")
    print(f"  orders/s              {summary([r.orders_per_second for r in runs])}")
    print(f"  p50 latency (ms)      {summary([r.p50_ms for r in runs])}")
    print(f"  p99 latency (ms)      {summary([r.p99_ms for r in runs])}")
    print(f"  SQS calls per order   {summary([r.sqs_calls_per_order for r in runs])}")
    print(f"  transactions / order  {summary([r.transactions_per_order for r in runs])}")
    print(f"  CPU busy (cores)      {summary([r.cpu_share for r in runs])}")
    print(f"  this machine's PostgreSQL commit ceiling (ceiling.py, 32 connections): "
          f"{summary(ceilings)} commits/s")
    print("\nprediction (one process per core; PostgreSQL and AWS keeping up)")
    for target in TARGETS:
        workers = math.ceil(target / rate)
        needed = target * commits
        started = target * args.supervised
        transitions = started * SUPERVISED_TRANSITIONS
        print(f"  {target:6,d} orders/s: {workers:4d} worker processes; "
              f"{target * calls:9,.0f} SQS calls/s; {needed:9,.0f} commits/s "
              f"({needed / ceiling:5.1f}x this machine's ceiling); Step Functions "
              f"{started:6,.0f} StartExecution/s (quota {START_EXECUTION[1]:,}/s), "
              f"{transitions:7,.0f} transitions/s (quota {STATE_TRANSITIONS[1]:,}/s), "
              f"{started:6,.0f} SendTask*/s (quota {SEND_TASK[1]:,}/s)")
    print(f"\nfigures: per-process {rate:.1f} orders/s, {calls:.2f} SQS calls and "
          f"{commits:.2f} transactions per order")
    print(f"load at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    run_main(main(main_args()))
