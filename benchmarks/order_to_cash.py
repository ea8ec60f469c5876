"""Orders per second and order latency (submit → Completed or Canceled) of the full
Order-to-Cash app: the order service, the saga and the payment, inventory and shipping
services, for a mix of 90% happy orders, 5% declined payments (canceled, nothing to
undo) and 5% orders for an article out of stock (charged, then refunded: a
compensation).

Variants, interleaved within each repeat:

- ``memory+sqlite`` / ``memory+postgres``: one process, the engine on the in-memory
  transport (queues in process memory), on SQLite (WAL file) or on PostgreSQL through
  the raw asyncpg store (a fresh schema per run), with the worker's default batched
  commits (one transaction per receive of up to ten messages). Receive, send and delete
  windows are 0: an in-memory queue has no per-call cost to batch away.
- ``memory+postgres-per-message``: as ``memory+postgres`` with ``batch_commits`` off
  (one transaction per message), for the batching's gain in the same run.
- ``memory+postgres-asyncio``: as ``memory+postgres`` on asyncio's own event loop
  instead of uvloop (which the worker takes when installed, ``STEPSAGA_EVENT_LOOP``),
  in a process of its own (this script re-run with ``STEPSAGA_EVENT_LOOP=asyncio``),
  for uvloop's gain in the same run.
- ``sqs-1proc`` / ``sqs-2proc``: the same app over SQS on the local emulator (moto,
  started here), hosted by 1 or 2 worker *processes* (this script re-run with
  ``--child-worker``), each hosting every service, on PostgreSQL (asyncpg store); the
  orders are submitted from this process through the order service and its outbox.
  Worker settings are the defaults (send linger 0.05 s, delete linger 0.2 s) with a
  20 s long poll. The emulator carries only ~100 messages/s, so these rates measure
  moto, not stepsaga; they are reported untuned.

The load is closed-loop: at most ``--window`` orders are open (submitted, not yet
terminal) at a time; every 10 ms the driver tops the window up, submitting concurrently
(as clients of the order API would). An order's latency is its row's ``updated_at −
created_at`` (written by the order service at submission and by its OrderCompleted or
OrderCanceled consumer); the rate is orders over the span from the first submission to
the last outcome. A happy order is 8 messages handled (submitted, charge, charged,
reserve, reserved, ship, shipped, completed); a refunded one 8, a declined one 4.

``--baseline REV`` adds a variant: git revision REV's own script and code (a detached
worktree, run in this interpreter) doing its ``memory+postgres`` run, interleaved with
the others, and prints ``memory+postgres`` over it — today's code against an earlier
one in the same run.

    .venv/bin/python benchmarks/order_to_cash.py [--orders 1000] [--sqs-orders 100] \
        [--window 32] [--repeats 3] [--baseline REV] \
        [--variants memory+sqlite,memory+postgres,memory+postgres-per-message,\
                    memory+postgres-asyncio,sqs-1proc,sqs-2proc]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import PG, describe, run_main, summary
from sqlalchemy import func, select

from core_saga import Outbox, SystemClock, Worker, WorkerSettings
from core_saga.extension import SEND_KIND, OutboxDispatcher, TransportSink
from core_saga.persistence import AsyncpgStore, SagaStore, SqlStore
from core_saga.transports import InMemoryTransport, SqsTransport, Transport
from examples.order_to_cash import (
    build_topology,
    build_worker,
    create_tables,
    order_service,
)
from examples.order_to_cash.inventory import set_stock_levels
from examples.order_to_cash.orders import OrderRequest, OrderService
from examples.order_to_cash.orders.tables import orders as orders_table
from examples.order_to_cash.payment import ChargeResult, FakePaymentGateway
from examples.order_to_cash.queues import ALL_QUEUES, REVIEW_QUEUE
from examples.order_to_cash.shipping import FakeCarrier
from examples.order_to_cash.storage import as_utc

SKUS = tuple(f"SKU-{n:02d}" for n in range(20))
"""Happy orders spread over these, so no single stock row is every order's lock."""
GONE = "GONE-1"
"""An article with no stock: its orders are charged, then refunded and canceled."""
DECLINED_AMOUNT = Decimal("66.60")
"""The gateway declines charges of exactly this amount."""
VARIANTS = ("memory+sqlite", "memory+postgres", "memory+postgres-per-message",
            "memory+postgres-asyncio", "sqs-1proc", "sqs-2proc")
SQS_WAIT_SECONDS = 20


class BenchGateway(FakePaymentGateway):
    """The fake gateway, declining every charge of :data:`DECLINED_AMOUNT` (worker
    processes cannot be told order ids, so the amount marks the declines)."""

    async def charge(self, *, order_id: str, amount: Decimal, currency: str,
                     idempotency_key: str) -> ChargeResult:
        if amount == DECLINED_AMOUNT:
            self.decline(order_id)
        return await super().charge(order_id=order_id, amount=amount, currency=currency,
                                    idempotency_key=idempotency_key)


def order_kind(i: int) -> str:
    """``happy`` (90%), ``declined`` (5%) or ``out_of_stock`` (5%) for the i-th order."""
    return {7: "declined", 17: "out_of_stock"}.get(i % 20, "happy")


def order_request(i: int) -> OrderRequest:
    """The i-th order of the mix."""
    kind = order_kind(i)
    sku = SKUS[i % len(SKUS)]
    lines: list[dict[str, Any]] = [{"sku": sku, "quantity": 1, "unitPrice": "12.50"}]
    if kind == "declined":
        lines = [{"sku": sku, "quantity": 1, "unitPrice": str(DECLINED_AMOUNT)}]
    elif kind == "out_of_stock":
        lines.append({"sku": GONE, "quantity": 1, "unitPrice": "7.50"})
    amount = sum((Decimal(line["unitPrice"]) * line["quantity"] for line in lines),
                 Decimal(0))
    return OrderRequest.model_validate({"customerId": f"c-{i % 97}", "currency": "EUR",
                                        "lines": lines, "amount": str(amount)})


def stock_for(orders: int) -> dict[str, int]:
    return {**dict.fromkeys(SKUS, orders), GONE: 0}


# -- reading outcomes ---------------------------------------------------------------------

class OrderWatch:
    """Reads the ``orders`` table of a SqlStore or an AsyncpgStore from the side."""

    def __init__(self, store: SagaStore) -> None:
        self.store = store
        self._conn: Any = None

    async def _pg(self) -> Any:
        if self._conn is None:
            assert isinstance(self.store, AsyncpgStore)
            settings = {"search_path": self.store.schema} if self.store.schema else {}
            self._conn = await asyncpg.connect(self.store.dsn, server_settings=settings)
        return self._conn

    async def open_orders(self) -> int:
        """Orders submitted and not yet Completed or Canceled."""
        if isinstance(self.store, SqlStore):
            async with self.store.engine.connect() as conn:
                found = await conn.execute(select(func.count()).select_from(orders_table)
                                           .where(orders_table.c.status == "Submitted"))
                return int(found.scalar_one())
        conn = await self._pg()
        return int(await conn.fetchval(
            "SELECT count(*) FROM orders WHERE status = 'Submitted'"))

    async def outcomes(self) -> list[tuple[str, datetime, datetime]]:
        """(status, created_at, updated_at) of every order."""
        if isinstance(self.store, SqlStore):
            async with self.store.engine.connect() as conn:
                found = await conn.execute(select(orders_table.c.status,
                                                  orders_table.c.created_at,
                                                  orders_table.c.updated_at))
                rows = [(r[0], r[1], r[2]) for r in found]
        else:
            conn = await self._pg()
            rows = [(r[0], r[1], r[2]) for r in await conn.fetch(
                "SELECT status, created_at, updated_at FROM orders")]
        return [(status, as_utc(a), as_utc(b)) for status, a, b in rows]

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


@dataclass
class RunResult:
    orders_per_second: float
    p50_ms: float
    p99_ms: float
    statuses: Counter[str]
    sqs_calls: int | None = None


async def drive(service: OrderService, watch: OrderWatch, orders: int, window: int, *,
                timeout: float) -> RunResult:
    """Submit `orders` keeping at most `window` open; wait for every outcome."""
    submitted = 0
    deadline = time.monotonic() + timeout
    while submitted < orders:
        room = min(window - await watch.open_orders(), orders - submitted)
        if room > 0:  # submitted concurrently, as clients of the order API would
            await asyncio.gather(*(service.submit(order_request(i))
                                   for i in range(submitted, submitted + room)))
            submitted += room
        await asyncio.sleep(0.01)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{submitted} of {orders} submitted after {timeout} s")
    while await watch.open_orders():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{await watch.open_orders()} of {orders} orders still "
                               f"open after {timeout} s")
        await asyncio.sleep(0.05)
    rows = await watch.outcomes()
    latencies = sorted((b - a).total_seconds() * 1000 for _, a, b in rows)
    span = (max(b for _, _, b in rows) - min(a for _, a, _ in rows)).total_seconds()
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    statuses = Counter(status for status, _, _ in rows)
    expected_canceled = sum(order_kind(i) != "happy" for i in range(orders))
    if statuses != Counter({"Completed": orders - expected_canceled,
                            "Canceled": expected_canceled}):
        raise AssertionError(f"unexpected outcomes {dict(statuses)}")
    return RunResult(len(rows) / span, cuts[49], cuts[98], statuses)


# -- variant (a): one process, in-memory transport ------------------------------------------

async def run_in_memory(store: SagaStore, orders: int, window: int, *,
                        timeout: float, batch_commits: bool = True,
                        transport: Transport | None = None,
                        settings: WorkerSettings | None = None,
                        on_worker: Callable[[Worker], None] | None = None) -> RunResult:
    """The whole app in this process on the in-memory transport (or `transport`) and
    `store`."""
    await create_tables(store)
    await set_stock_levels(store, stock_for(orders))
    settings = settings or WorkerSettings(
        database_url="memory://", concurrency=32, outbox_poll_seconds=0.5,
        receive_linger_seconds=0.0, send_linger_seconds=0.0, delete_linger_seconds=0.0,
        batch_commits=batch_commits)
    transport = transport or InMemoryTransport()
    worker = build_worker(settings, store, transport, gateway=BenchGateway(seed=1),
                          carrier=FakeCarrier())
    if on_worker is not None:
        on_worker(worker)
    service = order_service(worker)
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    watch = OrderWatch(store)
    try:
        return await drive(service, watch, orders, window, timeout=timeout)
    finally:
        worker.request_stop()
        await task
        await watch.close()


async def memory_sqlite(orders: int, window: int, timeout: float) -> RunResult:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlStore.from_url(f"sqlite+aiosqlite:///{tmp}/o2c.db")
        try:
            return await run_in_memory(store, orders, window, timeout=timeout)
        finally:
            await store.close()


def fresh_pg_store(pool_size: int = 20) -> AsyncpgStore:
    return AsyncpgStore.from_url(PG, schema=f"o2c_{uuid.uuid4().hex[:10]}",
                                 pool_size=pool_size)


async def memory_postgres(orders: int, window: int, timeout: float, *,
                          batch_commits: bool = True) -> RunResult:
    store = fresh_pg_store()
    try:
        return await run_in_memory(store, orders, window, timeout=timeout,
                                   batch_commits=batch_commits)
    finally:
        await store.drop_schema()
        await store.close()


# -- variant (b): worker processes over SQS on the emulator ----------------------------------

def sqs_settings(endpoint: str, prefix: str) -> WorkerSettings:
    return WorkerSettings(database_url=PG, aws_endpoint_url=endpoint, queue_prefix=prefix,
                          wait_time_seconds=SQS_WAIT_SECONDS, concurrency=32,
                          outbox_poll_seconds=0.5)


async def child_worker(endpoint: str, prefix: str, schema: str) -> None:
    """A worker process hosting the whole app over SQS (``--child-worker``): prints
    ``ready`` once receiving, and its counts at SIGTERM."""
    settings = sqs_settings(endpoint, prefix)
    store = AsyncpgStore.from_url(PG, schema=schema)
    transport = await SqsTransport.connect(settings.sqs())
    worker = build_worker(settings, store, transport, gateway=BenchGateway(seed=1),
                          carrier=FakeCarrier())
    task = asyncio.create_task(worker.run(install_signal_handlers=True))
    await asyncio.sleep(0.5)
    print("ready", flush=True)
    await task
    print(f"stats handled={worker.handled} failed={worker.failed} "
          f"sqs_calls={transport.total_calls}", flush=True)
    await transport.close()
    await store.close()


@contextlib.asynccontextmanager
async def worker_processes(count: int, endpoint: str, prefix: str, schema: str,
                           env: dict[str, str], logdir: Path
                           ) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """`count` child workers, started and ready; stopped with SIGTERM at exit."""
    procs: list[asyncio.subprocess.Process] = []
    logs = []
    try:
        for n in range(count):
            log = (logdir / f"{prefix}worker{n}.log").open("w")
            logs.append(log)
            procs.append(await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--child-worker", "--endpoint", endpoint,
                "--prefix", prefix, "--schema", schema,
                stdout=asyncio.subprocess.PIPE, stderr=log, env={**os.environ, **env}))
        for n, proc in enumerate(procs):
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            if line.strip() != b"ready":
                raise RuntimeError(f"worker {n} did not start: {line!r}; see "
                                   f"{logdir / f'{prefix}worker{n}.log'}")
        yield procs
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for log in logs:
            log.close()


async def _child_sqs_calls(procs: Sequence[asyncio.subprocess.Process]) -> int:
    """SQS calls made, summed over the stopped workers."""
    calls = 0
    for proc in procs:
        assert proc.stdout is not None
        for line in (await proc.stdout.read()).decode().splitlines():
            if line.startswith("stats "):
                fields = dict(part.split("=") for part in line.split()[1:])
                calls += int(fields["sqs_calls"])
    return calls


async def run_sqs(emulator: Any, processes: int, orders: int, window: int, logdir: Path,
                  timeout: float) -> RunResult:
    """The app in `processes` worker processes over the emulator's SQS."""
    prefix = f"o{uuid.uuid4().hex[:6]}-"
    queues = [emulator.create_queue(prefix + q, max_receive_count=10)
              for q in ALL_QUEUES if q != REVIEW_QUEUE]
    store = fresh_pg_store(pool_size=4)
    assert store.schema is not None
    sqs: SqsTransport | None = None
    try:
        await create_tables(store)
        await set_stock_levels(store, stock_for(orders))
        settings = sqs_settings(emulator.endpoint_url, prefix)
        sqs = await SqsTransport.connect(settings.sqs())
        clock = SystemClock()
        dispatcher = OutboxDispatcher(store, {SEND_KIND: TransportSink(sqs)}, clock)
        service = OrderService(Outbox(store, topology=build_topology(), clock=clock,
                                      dispatcher=dispatcher))
        watch = OrderWatch(store)
        async with worker_processes(processes, emulator.endpoint_url, prefix, store.schema,
                                    emulator.env(), logdir) as procs:
            try:
                result = await drive(service, watch, orders, window, timeout=timeout)
            finally:
                await watch.close()
        # the workers' calls and the order service's sends
        result.sqs_calls = await _child_sqs_calls(procs) + sqs.total_calls
        return result
    finally:
        if sqs is not None:
            await sqs.close()
        await store.drop_schema()
        await store.close()
        client = emulator.boto3_client("sqs")
        for queue in queues:
            for url in (queue.url, queue.dlq_url):
                if url:
                    with contextlib.suppress(Exception):
                        client.delete_queue(QueueUrl=url)


# -- main -----------------------------------------------------------------------------------

def _variants(text: str) -> list[str]:
    chosen = [v.strip() for v in text.split(",") if v.strip()]
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {','.join(VARIANTS)}")
    return chosen


BASELINE = "baseline"
_FIGURES = re.compile(r"^figures: memory\+postgres orders/s ([\d.]+) p50 (\d+) ms "
                      r"p99 (\d+) ms$", re.MULTILINE)


@contextlib.contextmanager
def _checkout(revision: str, tmp: Path) -> Iterator[Path]:
    """A detached worktree of `revision` (removed afterwards)."""
    where = tmp / "baseline"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q",
                    str(where), revision], check=True)
    try:
        yield where
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                        str(where)], check=False)


async def run_baseline(checkout: Path, orders: int, window: int, timeout: float,
                       env: dict[str, str] | None = None) -> RunResult:
    """One memory+postgres run of the revision in `checkout`, by its own script (in this
    interpreter: the dependencies are this checkout's), in a process of its own with
    `env` added to its environment."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(checkout / "benchmarks" / "order_to_cash.py"), "--orders",
        str(orders), "--window", str(window), "--repeats", "1", "--variants",
        "memory+postgres", cwd=checkout, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env={**os.environ, **(env or {})})
    out, _ = await asyncio.wait_for(process.communicate(), timeout)
    found = _FIGURES.search(out.decode(errors="replace"))
    if process.returncode != 0 or found is None:
        raise RuntimeError(f"the run of {checkout} failed (exit {process.returncode}):\n"
                           f"{out.decode(errors='replace')[-2000:]}")
    return RunResult(float(found[1]), float(found[2]), float(found[3]), Counter())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=1000,
                        help="orders per in-memory-transport run (default 1000)")
    parser.add_argument("--sqs-orders", type=int, default=100,
                        help="orders per emulator run (default 100)")
    parser.add_argument("--window", type=int, default=32,
                        help="orders open at once (default 32)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", type=_variants, default=list(VARIANTS),
                        help=f"comma-separated, from {','.join(VARIANTS)} (default: all)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds a run may take before it fails (default 300)")
    parser.add_argument("--baseline", metavar="REV",
                        help="also run this git revision's own script (memory+postgres), "
                             "interleaved, and print our memory+postgres over it")
    parser.add_argument("--child-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_worker:
        await child_worker(args.endpoint, args.prefix, args.schema)
        return
    if args.orders < 20 or args.sqs_orders < 20 or args.window < 1:
        parser.error("--orders and --sqs-orders must be at least 20 (one of each kind), "
                     "--window at least 1")
    print(describe(("asyncpg", "aiosqlite", "sqlalchemy", "pydantic", "moto", "aiobotocore")))
    print(f"parameters: {args.orders} orders per in-memory run, {args.sqs_orders} per "
          f"emulator run, window {args.window} open orders, {args.repeats} repeats; mix "
          f"90% happy / 5% payment declined / 5% out of stock (refund); variants "
          f"{','.join(args.variants)}")
    print("  memory+*: worker concurrency 32, batching windows 0; sqs-*: worker processes with "
          f"concurrency 32, send linger 0.05 s, delete linger 0.2 s, long poll "
          f"{SQS_WAIT_SECONDS} s, asyncpg store (pool 20 per process)\n")

    emulator_cm: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if any(v.startswith("sqs") for v in args.variants):
        from core_saga.emulator import start_emulator

        emulator_cm = start_emulator()
    results: dict[str, list[RunResult]] = {v: [] for v in args.variants}
    with emulator_cm as emulator, tempfile.TemporaryDirectory() as tmp:
        if emulator is not None:
            os.environ.update(emulator.env())  # fake credentials: nothing reaches AWS

        def sqs_run(processes: int) -> Awaitable[RunResult]:
            return run_sqs(emulator, processes, args.sqs_orders, args.window, Path(tmp),
                           args.timeout)

        runs: dict[str, Callable[[], Awaitable[RunResult]]] = {
            "memory+sqlite": lambda: memory_sqlite(args.orders, args.window, args.timeout),
            "memory+postgres": lambda: memory_postgres(args.orders, args.window,
                                                       args.timeout),
            "memory+postgres-per-message": lambda: memory_postgres(
                args.orders, args.window, args.timeout, batch_commits=False),
            "memory+postgres-asyncio": lambda: run_baseline(
                ROOT, args.orders, args.window, args.timeout,
                env={"STEPSAGA_EVENT_LOOP": "asyncio"}),
            "sqs-1proc": lambda: sqs_run(1),
            "sqs-2proc": lambda: sqs_run(2),
        }
        baseline = contextlib.nullcontext() if args.baseline is None else \
            _checkout(args.baseline, Path(tmp))
        with baseline as checkout:
            if checkout is not None:
                runs[BASELINE] = lambda: run_baseline(checkout, args.orders, args.window,
                                                      args.timeout)
                results[BASELINE] = []
            for _ in range(args.repeats):  # interleaved, so load drifts hit every variant
                for variant in results:
                    results[variant].append(await runs[variant]())

    labels = {"memory+sqlite": "in-memory transport, SQLite",
              "memory+postgres": "in-memory transport, PostgreSQL (asyncpg)",
              "memory+postgres-per-message": "in-memory transport, PostgreSQL (asyncpg), "
                                             "one transaction per message",
              "memory+postgres-asyncio": "in-memory transport, PostgreSQL (asyncpg), "
                                         "asyncio's event loop (a process of its own)",
              "sqs-1proc": "SQS emulator, 1 worker process",
              "sqs-2proc": "SQS emulator, 2 worker processes",
              BASELINE: f"in-memory transport, PostgreSQL, at {args.baseline} (its own "
                        "script and code)"}
    print("orders per second; latency submit → terminal (ms)")
    for variant, runs_ in results.items():
        print(f"  {labels[variant]}")
        print(f"    orders/s     {summary([r.orders_per_second for r in runs_])}")
        print(f"    p50 latency  {summary([r.p50_ms for r in runs_])}")
        print(f"    p99 latency  {summary([r.p99_ms for r in runs_])}")
        outcomes = runs_[0].statuses
        line = f"    outcomes     {outcomes['Completed']} completed, " \
               f"{outcomes['Canceled']} canceled per run" if outcomes else \
            "    outcomes     checked by that process's own script"
        if runs_[0].sqs_calls is not None:
            calls = [(r.sqs_calls or 0) / sum(r.statuses.values()) for r in runs_]
            line += f"; SQS calls per order median {statistics.median(calls):.1f}"
        print(line)
    print()
    for variant, runs_ in results.items():
        print(f"figures: {variant} orders/s "
              f"{statistics.median(r.orders_per_second for r in runs_):.1f} "
              f"p50 {statistics.median(r.p50_ms for r in runs_):.0f} ms "
              f"p99 {statistics.median(r.p99_ms for r in runs_):.0f} ms")
    if BASELINE in results and "memory+postgres" in results:
        ratio = statistics.median(r.orders_per_second for r in results["memory+postgres"]) \
            / statistics.median(r.orders_per_second for r in results[BASELINE])
        print(f"figures: memory+postgres / {args.baseline} orders per second = {ratio:.2f}")
    if "memory+postgres-asyncio" in results and "memory+postgres" in results:
        ratio = statistics.median(r.orders_per_second for r in results["memory+postgres"]) \
            / statistics.median(r.orders_per_second
                                for r in results["memory+postgres-asyncio"])
        print(f"figures: memory+postgres / memory+postgres-asyncio orders per second = "
              f"{ratio:.2f}")


if __name__ == "__main__":
    run_main(main())
