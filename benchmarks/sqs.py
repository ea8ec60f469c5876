"""Messages handled per second and SQS API calls per message handled, over the local
emulator, at 1 and 2 workers, at load and paced, on PostgreSQL (the production default
store, raw asyncpg) and SQLite. Calls are what the workers make (receives, batched
deletes, outbox sends, visibility changes), counted by the transport; the load generator
is not counted. The workers run the shipped defaults: batched commits, batching windows
that follow the arrival rate (send at most 0.05 s, delete at most 0.2 s), 20 s long poll.

"At load": the orders wait on the queue before the workers start. "Paced": the orders
are offered at ``--paced`` orders per second while the workers run. The emulator's SQS
carries only a few hundred messages a second and slows as a queue fills, so the rate
measures moto, not stepsaga; the calls per message do not depend on it.

Every repeat runs every variant once, in turn (interleaved).

    .venv/bin/python benchmarks/sqs.py [--orders 200] [--repeats 3] \
        [--database postgres|sqlite|both] [--paced 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import describe, run_main, summary

from core_saga import Envelope, Worker, WorkerSettings
from core_saga.emulator import Emulator, start_emulator
from core_saga.persistence import AsyncpgStore, store_from_url
from core_saga.transports import SqsTransport
from examples.quickstart.article_saga import ArticleOrderSaga, OrderSubmitted
from examples.quickstart.services import QUEUES, host_services, metadata

PG = "postgresql://postgres@127.0.0.1:5432/test"
MESSAGES_PER_ORDER = 7  # submit, charge, paid, allocate, allocated, ship, shipped


async def run(emulator: Emulator, workers: int, orders: int, db: str, *,
              backlog: bool, paced: float) -> tuple[float, float, dict[str, int]]:
    """One run: (messages handled per second, SQS calls per message, calls by kind)."""
    prefix = f"b{uuid.uuid4().hex[:5]}-"
    for queue in QUEUES:
        emulator.create_queue(prefix + queue)
    settings = WorkerSettings(database_url=db, aws_endpoint_url=emulator.endpoint_url,
                              queue_prefix=prefix, wait_time_seconds=20, concurrency=32,
                              outbox_poll_seconds=0.5)
    schema = f"sqsb_{uuid.uuid4().hex[:8]}" if db.startswith("postgresql") else None
    store = store_from_url(db, schema=schema) if schema else store_from_url(db)
    await store.create_schema()
    await store.create_tables(metadata)
    hosts = []
    for _ in range(workers):
        transport = await SqsTransport.connect(settings.sqs())
        worker = Worker(settings, store=store, transport=transport)
        host_services(worker)
        hosts.append((worker, transport))
    sqs = emulator.boto3_client("sqs")
    url = sqs.get_queue_url(QueueName=prefix + "article-order-saga")["QueueUrl"]
    tasks: list[asyncio.Task[None]] = []
    if not backlog:
        tasks = [asyncio.create_task(w.run(install_signal_handlers=False)) for w, _ in hosts]
    started = time.perf_counter()
    for start in range(0, orders, 10):
        entries = [{"Id": str(i), "MessageBody": Envelope(OrderSubmitted(
            order_id=f"{prefix}{start + i}", amount=Decimal("10.00"))).encode().decode()}
            for i in range(min(10, orders - start))]
        await asyncio.to_thread(sqs.send_message_batch, QueueUrl=url, Entries=entries)
        if not backlog:  # ten orders per call, `paced` orders a second
            await asyncio.sleep(max(0.0, started + (start + 10) / paced - time.perf_counter()))
    if backlog:  # the orders wait on the queue: the workers start at load
        started = time.perf_counter()
        tasks = [asyncio.create_task(w.run(install_signal_handlers=False)) for w, _ in hosts]
    deadline = time.monotonic() + 600
    while (await store.count_instances(ArticleOrderSaga.model.name)).get("Completed", 0) \
            < orders:
        if time.monotonic() > deadline:
            raise TimeoutError("orders not completed in 600 s")
        await asyncio.sleep(0.2)
    elapsed = time.perf_counter() - started
    for worker, _ in hosts:
        worker.request_stop()
    await asyncio.gather(*tasks)
    calls = sum(t.total_calls for _, t in hosts)
    breakdown: dict[str, int] = {}
    for _, t in hosts:
        for operation, count in t.calls.items():
            breakdown[operation] = breakdown.get(operation, 0) + count
    handled = sum(w.handled for w, _ in hosts)
    for _, transport in hosts:
        await transport.close()
    if schema and isinstance(store, AsyncpgStore):
        await store.drop_schema()
    await store.close()
    assert handled >= orders * MESSAGES_PER_ORDER, handled
    return handled / elapsed, calls / handled, breakdown


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"),
                        default="both",
                        help="the store (postgres: 127.0.0.1:5432, database test; default "
                             "both)")
    parser.add_argument("--paced", type=float, default=10.0,
                        help="orders offered per second in the paced runs (default 10)")
    args = parser.parse_args()
    if args.orders < 10 or args.paced <= 0:
        parser.error("--orders must be at least 10 and --paced positive")
    databases = ["postgres", "sqlite"] if args.database == "both" else [args.database]
    defaults = WorkerSettings()
    print(describe(("moto", "aiobotocore", "asyncpg", "sqlalchemy", "aiosqlite")))
    print(f"parameters: {args.orders} orders x {MESSAGES_PER_ORDER} messages, stores "
          f"{','.join(databases)}, {args.repeats} interleaved repeats; workers in one "
          f"process, each with its own SQS client; shipped defaults: batch_commits "
          f"{defaults.batch_commits}, send window ≤ {defaults.send_linger_seconds} s, "
          f"delete window ≤ {defaults.delete_linger_seconds} s (both follow the arrival "
          f"rate); paced: {args.paced:g} orders/s offered")
    variants = [(database, backlog, workers) for database in databases
                for backlog in (True, False) for workers in (1, 2)]
    results: dict[tuple[str, bool, int], list[tuple[float, float, dict[str, int]]]] = {
        v: [] for v in variants}
    with start_emulator() as emulator, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(emulator.env())
        for n in range(args.repeats):
            for database, backlog, workers in variants:
                db = (f"sqlite+aiosqlite:///{tmp}/w{workers}-{n}-{backlog}.db"
                      if database == "sqlite" else PG)
                results[(database, backlog, workers)].append(await run(
                    emulator, workers, args.orders, db, backlog=backlog, paced=args.paced))
    for database in databases:
        for backlog in (True, False):
            mode = ("at load (the orders wait on the queue)" if backlog
                    else f"paced ({args.paced:g} orders/s offered)")
            print(f"\n{database}, {mode}")
            for workers in (1, 2):
                runs = results[(database, backlog, workers)]
                costs = [cost for _, cost, _ in runs]
                calls: dict[str, int] = {}
                for _, _, breakdown in runs:
                    for operation, count in breakdown.items():
                        calls[operation] = calls.get(operation, 0) + count
                print(f"  {workers} worker(s): messages handled/s "
                      f"{summary([rate for rate, _, _ in runs])}")
                print(f"  {workers} worker(s): SQS calls per message  median "
                      f"{statistics.median(costs):.3f}  spread "
                      f"{min(costs):.3f}–{max(costs):.3f}")
                print(f"  {workers} worker(s): calls over the repeats "
                      f"{dict(sorted(calls.items()))}")
    print(f"\nload at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    run_main(main())
