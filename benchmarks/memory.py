"""Worker memory (RSS) against the number of sagas persisted and waiting: it should not
grow with them, since a worker loads an instance only when a message for it arrives.

For each count (default 100, 10,000 and 100,000) and repeat, this script makes a fresh
PostgreSQL schema with the Order-to-Cash tables and inserts the waiting instances in bulk
with server-side SQL: half in ``AwaitingReview`` (handed off to manual review, no timer),
half in ``ShippingPending`` with their shipping-deadline timer pending in the outbox an
hour ahead (so the outbox poller's scans run over a large outbox too). Then a fresh
subprocess (this script with ``--child``) starts a worker hosting the whole app on the
in-memory transport and the raw asyncpg store, runs ``--orders`` new orders to their end
(about 8 messages each), lets the outbox poller run a few passes, and reports its RSS
(psutil) and its peak RSS (``ru_maxrss``). The schema is dropped after each run.

    .venv/bin/python benchmarks/memory.py [--counts 100,10000,100000] [--orders 20] \
        [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import orjson
import psutil  # type: ignore[import-untyped]  # no stubs in the bench extra

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import PG, describe, int_list, run_main, summary
from order_to_cash import (
    BenchGateway,
    OrderWatch,
    drive,
    stock_for,
)

from bridge import HandoffRecord
from core_saga import Envelope, WorkerSettings
from core_saga.extension import SCHEDULE_TOKEN
from core_saga.persistence import AsyncpgStore
from core_saga.transports import InMemoryTransport
from examples.order_to_cash import (
    OrderSaga,
    OrderState,
    build_worker,
    create_tables,
    order_service,
)
from examples.order_to_cash.inventory import set_stock_levels
from examples.order_to_cash.messages import ShipmentDeadlineExpired, StockLine
from examples.order_to_cash.queues import ORDER_SAGA_QUEUE
from examples.order_to_cash.shipping import FakeCarrier

TARGET = 1.10
"""Largest count's RSS over the smallest's: flat within 10%."""
MIB = 1024 * 1024
ID = "__ID__"
"""Replaced by each instance's number in the bulk insert."""


def _waiting_data(now: datetime) -> tuple[str, str]:
    """The JSON instance data of an order waiting in review, and of one waiting for
    shipping (with its deadline token), as templates with :data:`ID` in them."""
    common = {"customer_id": f"c-{ID}", "amount": Decimal("1250.00"), "currency": "EUR",
              "lines": [StockLine(sku="SKU-01", quantity=2), StockLine(sku="SKU-02",
                                                                       quantity=1)]}
    review = OrderState(
        **common, review_reasons=["amount 1250.00 EUR is over the review threshold 1000.00"],
        handoffs=[HandoffRecord(handoff_id=f"h-{ID}", workflow="ManualReview",
                                reason="amount over the review threshold", requested_at=now,
                                execution_arn=f"arn:aws:states:us-east-1:123456789012:"
                                              f"execution:ManualReview:{ID}",
                                started_at=now)])
    shipping = OrderState(**common, payment_reference=f"ch_{ID}", shipment_attempt=1,
                          shipping_deadline_token=f"tok-{ID}")
    return (orjson.dumps(review.data()).decode(), orjson.dumps(shipping.data()).decode())


async def seed(store: AsyncpgStore, count: int) -> None:
    """`count` waiting OrderSaga instances (half in review, half in shipping with a
    pending timer each), inserted server-side."""
    now = datetime.now(UTC)
    review, shipping = _waiting_data(now)
    timer = Envelope(ShipmentDeadlineExpired(order_id=f"wait-{ID}"), message_id=f"t-{ID}",
                     correlation_id=f"wait-{ID}", sent_time=now,
                     headers={SCHEDULE_TOKEN: f"tok-{ID}"})
    settings = {"search_path": store.schema} if store.schema else {}
    conn = await asyncpg.connect(store.dsn, server_settings=settings)
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO saga_instances (saga_type, correlation_id, state, version, data,"
                " created_at, updated_at) SELECT $1, 'wait-' || g,"
                " CASE WHEN g % 2 = 0 THEN 'AwaitingReview' ELSE 'ShippingPending' END, 3,"
                " replace(CASE WHEN g % 2 = 0 THEN $2 ELSE $3 END, $4, g::text), $5, $5"
                " FROM generate_series(1, $6) AS g",
                OrderSaga.model.name, review, shipping, ID, now, count)
            await conn.execute(
                "INSERT INTO outbox (message_id, kind, destination, message_type,"
                " correlation_id, body, created_at, deliver_at, schedule_token)"
                " SELECT 't-' || g, 'send', $1, $2, 'wait-' || g, replace($3, $4, g::text),"
                " $5, $6, 'tok-' || g FROM generate_series(1, $7) AS g WHERE g % 2 = 1",
                ORDER_SAGA_QUEUE, timer.message_type, timer.encode().decode(), ID, now,
                now + timedelta(hours=1), count)
        found = await conn.fetchval("SELECT count(*) FROM saga_instances WHERE saga_type = $1",
                                    OrderSaga.model.name)
        assert found == count, (found, count)
    finally:
        await conn.close()


async def child(schema: str, orders: int) -> None:
    """The measured process: a worker on the seeded schema; prints one JSON line."""
    process = psutil.Process()
    store = AsyncpgStore.from_url(PG, schema=schema)
    settings = WorkerSettings(database_url=PG, concurrency=32, outbox_poll_seconds=0.2,
                              send_linger_seconds=0.0, delete_linger_seconds=0.0)
    worker = build_worker(settings, store, InMemoryTransport(), gateway=BenchGateway(seed=1),
                          carrier=FakeCarrier())
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    await asyncio.sleep(0.5)
    started_rss = process.memory_info().rss
    watch = OrderWatch(store)
    t0 = time.perf_counter()
    try:
        await drive(order_service(worker), watch, orders, window=8, timeout=120)
    finally:
        await watch.close()
    seconds = time.perf_counter() - t0
    await asyncio.sleep(1.0)  # a few more outbox poller passes over the big outbox
    gc.collect()
    rss = process.memory_info().rss
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    handled = worker.handled
    worker.request_stop()
    await task
    await store.close()
    print(json.dumps({"rss": rss, "started_rss": started_rss, "peak_rss": peak,
                      "handled": handled, "seconds": seconds}), flush=True)


async def measure(count: int, orders: int) -> dict[str, float]:
    """Seed a fresh schema with `count` waiting sagas and measure a fresh worker on it."""
    store = AsyncpgStore.from_url(PG, schema=f"mem_{uuid.uuid4().hex[:10]}", pool_size=2)
    assert store.schema is not None
    try:
        await create_tables(store)
        await set_stock_levels(store, stock_for(orders))
        await seed(store, count)
        await store.close()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--child", "--schema", store.schema,
            "--orders", str(orders), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 300)
        if proc.returncode != 0:
            raise RuntimeError(f"the worker process failed ({proc.returncode}):\n"
                               f"{err.decode()[-3000:]}")
        report: dict[str, float] = json.loads(out.decode().strip().splitlines()[-1])
        return report
    finally:
        await store.drop_schema()
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--counts", default=[100, 10_000, 100_000],
                        type=int_list("100,10000,100000", at_least=2,
                                      problem="give at least two counts, each 1 or more"),
                        help="waiting sagas per run, comma-separated (default "
                             "100,10000,100000)")
    parser.add_argument("--orders", type=int, default=20,
                        help="orders the worker runs to their end in each run (default 20)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        await child(args.schema, args.orders)
        return
    if args.orders < 20:
        parser.error("--orders must be at least 20 (one order of each kind)")
    print(describe(("asyncpg", "psutil", "pydantic", "sqlalchemy")))
    print(f"parameters: waiting sagas {','.join(map(str, args.counts))}, {args.orders} "
          f"orders processed per run, {args.repeats} repeats; worker: whole Order-to-Cash "
          "app, in-memory transport, AsyncpgStore (pool 20), a fresh process per run\n")
    results: dict[int, list[dict[str, float]]] = {count: [] for count in args.counts}
    for _ in range(args.repeats):  # interleaved, so load drifts hit every count
        for count in args.counts:
            results[count].append(await measure(count, args.orders))

    print("worker RSS after processing, MiB (and at start, and peak)")
    for count, reports in results.items():
        print(f"  {count:7d} waiting  RSS {summary([r['rss'] / MIB for r in reports])}")
        print(f"  {'':7s}          start {summary([r['started_rss'] / MIB for r in reports])}")
        print(f"  {'':7s}          peak {summary([r['peak_rss'] / MIB for r in reports])}")
        print(f"  {'':7s}          messages handled "
              f"{statistics.median(r['handled'] for r in reports):.0f}")
    smallest, largest = min(args.counts), max(args.counts)
    ratio = (statistics.median(r["rss"] for r in results[largest])
             / statistics.median(r["rss"] for r in results[smallest]))
    verdict = "met" if ratio <= TARGET else "missed"
    print(f"\nRSS {largest} waiting / {smallest} waiting = {ratio:.3f} "
          f"(target ≤ {TARGET:.2f}: {verdict})")


if __name__ == "__main__":
    run_main(main())
