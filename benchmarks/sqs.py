"""Messages handled per second and SQS API calls per message handled, over the local
emulator, at 1 and 2 workers. Calls are what the workers make (receives, batched
deletes, outbox sends), counted by the transport; the load generator is not counted.

The emulator's SQS carries only a few hundred messages a second and slows as a queue
fills, so the rate measures moto, not stepsaga; the calls per message do not depend on it.

    .venv/bin/python benchmarks/sqs.py [--orders 200] [--repeats 3] [--database postgres]
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

from _machine import describe, summary

from core_saga import Envelope, Worker, WorkerSettings
from core_saga.emulator import Emulator, start_emulator
from core_saga.persistence import SqlStore
from core_saga.transports import SqsTransport
from examples.quickstart.article_saga import ArticleOrderSaga, OrderSubmitted
from examples.quickstart.services import QUEUES, host_services, metadata

SEND_LINGER = 0.05
DELETE_LINGER = 0.2
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
MESSAGES_PER_ORDER = 7  # submit, charge, paid, allocate, allocated, ship, shipped


async def run(emulator: Emulator, workers: int, orders: int, db: str, *,
              backlog: bool) -> tuple[float, float]:
    prefix = f"b{uuid.uuid4().hex[:5]}-"
    for queue in QUEUES:
        emulator.create_queue(prefix + queue)
    settings = WorkerSettings(database_url=db, aws_endpoint_url=emulator.endpoint_url,
                              queue_prefix=prefix, wait_time_seconds=20, concurrency=32,
                              outbox_poll_seconds=0.5, send_linger_seconds=SEND_LINGER,
                              delete_linger_seconds=DELETE_LINGER)
    schema = f"sqsb_{uuid.uuid4().hex[:8]}" if db.startswith("postgresql") else None
    store = SqlStore.from_url(db, schema=schema)
    await store.create_schema()
    async with store.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
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
        if not backlog:
            await asyncio.sleep(0.05)  # paced: moto slows as a queue fills
    if backlog:  # the orders wait on the queue: the workers start at load
        started = time.perf_counter()
        tasks = [asyncio.create_task(w.run(install_signal_handlers=False)) for w, _ in hosts]
    while (await store.count_instances(ArticleOrderSaga.model.name)).get("Completed", 0) \
            < orders:
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
    print(f"    {workers} worker(s), {'backlog' if backlog else 'paced'}: "
          f"{dict(sorted(breakdown.items()))}")
    handled = sum(w.handled for w, _ in hosts)
    for _, transport in hosts:
        await transport.close()
    if schema:
        await store.drop_schema()
    await store.close()
    assert handled >= orders * MESSAGES_PER_ORDER, handled
    return handled / elapsed, calls / handled


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="postgres",
                        help="the store (postgres: 127.0.0.1:5432, database test)")
    parser.add_argument("--send-linger", type=float, default=0.05)
    parser.add_argument("--delete-linger", type=float, default=0.2)
    args = parser.parse_args()
    global SEND_LINGER, DELETE_LINGER
    SEND_LINGER, DELETE_LINGER = args.send_linger, args.delete_linger
    print(describe(("moto", "aiobotocore", "sqlalchemy", "aiosqlite")))
    print(f"parameters: {args.orders} orders x {MESSAGES_PER_ORDER} messages, "
          f"{args.database} store, "
          f"{args.repeats} repeats; workers in one process, each with its own SQS client; "
          f"send linger {SEND_LINGER} s, delete linger {DELETE_LINGER} s")
    with start_emulator() as emulator, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(emulator.env())
        for backlog in (True, False):
            mode = ("at load (the orders wait on the queue)" if backlog
                    else "paced arrivals (200 orders/s offered)")
            print(f"\n{mode}")
            for workers in (1, 2):
                rates, costs = [], []
                for n in range(args.repeats):
                    db = (f"sqlite+aiosqlite:///{tmp}/w{workers}-{n}-{backlog}.db"
                          if args.database == "sqlite" else PG)
                    rate, cost = await run(emulator, workers, args.orders, db,
                                           backlog=backlog)
                    rates.append(rate)
                    costs.append(cost)
                print(f"  {workers} worker(s): messages handled/s {summary(rates)}")
                print(f"  {workers} worker(s): SQS calls per message  median "
                      f"{statistics.median(costs):.3f}  spread "
                      f"{min(costs):.3f}–{max(costs):.3f}")


if __name__ == "__main__":
    asyncio.run(main())
