"""Orders per second of the same order saga written with DBOS Transact, beside stepsaga,
on the same PostgreSQL, in the same run.

Both sides run the Order-to-Cash shape — place the order, charge the payment, reserve
the stock, create the shipment, record the outcome — with the same mix as
``benchmarks/order_to_cash.py``: 90% happy, 5% declined payments (canceled, nothing to
undo), 5% orders for an article out of stock (charged, then refunded: the compensation).
Both write the *same rows through the same repository code*: the Order-to-Cash app's
tables and its repositories (SQLAlchemy Core statements on a ``core_saga.Transaction``) —
on the DBOS side over the SQLAlchemy connection of the DBOS transaction, on the stepsaga
side over the asyncpg store (each statement shape compiled once, run prepared). Per
order:

- stepsaga (the whole app, one process, in-memory transport, raw asyncpg store, worker
  concurrency 32): the order service's transaction (order + lines + outbox row), then
  eight message transactions, each with its inbox row and outbox row(s): the saga's four
  (instance insert or update + history) and the services' four (charge: ledger row;
  reserve: stock updates + reservation; ship: shipment row; verdict: order update). A
  refunded order has a refund transaction and one more saga transaction instead of
  shipping; a declined one stops after the charge.
- DBOS (``@DBOS.workflow`` with one ``@ds.transaction`` per step, READ COMMITTED like
  stepsaga's transactions): the workflow's status row, then one transaction per step
  with the same writes as the service above plus DBOS's checkpoint row —
  place_order (order + lines), charge (ledger row), reserve (stock + reservation),
  ship (shipment row), outcome (order update); refund (ledger row) instead of ship for
  the out-of-stock orders — and DBOS's step records in its system database.

The fake gateway and carrier are called inside the step's transaction on both sides,
as stepsaga's consumers do. Load is closed-loop on both: at most ``--window`` orders
open at once. The clocks differ: DBOS's orders/s is wall time around the whole batch
(``perf_counter``), stepsaga's is the span of its orders' own rows (first ``created_at``
to last ``updated_at``), with each order's latency read the same ways. Each side builds
the order requests before its clock starts. Each run is a fresh process with fresh
schemas (DBOS: system, datasource and app schemas; stepsaga: one), dropped afterwards;
the two sides alternate.

    .venv/bin/python benchmarks/peer_dbos.py [--orders 1000] [--window 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import PG, describe, run_main, summary
from _saga_steps import OrderSteps
from order_to_cash import (
    memory_postgres,
    order_kind,
    stock_for,
)

from core_saga import Result, ScalarResult, StatementError
from core_saga.persistence import AsyncpgStore, SqlStore
from examples.order_to_cash import create_tables
from examples.order_to_cash.inventory import set_stock_levels
from examples.order_to_cash.orders.repository import (
    CANCELED,
    COMPLETED,
)

TARGET = 4.0
"""stepsaga's orders/s over DBOS's."""
POOL = 20
"""Connections to the application database on each side."""


class DatasourceTransaction:
    """The SQLAlchemy connection of a DBOS transaction as a ``core_saga.Transaction``,
    so that the app's repositories run unchanged inside ``@ds.transaction`` steps."""

    dialect = "postgresql"

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def execute(self, statement: Any, parameters: Any = None) -> Result:
        result = await self.conn.execute(statement, parameters)
        return Result(result.all() if result.returns_rows else [], result.rowcount)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return (await self.execute(statement, parameters)).scalar()

    async def scalars(self, statement: Any, parameters: Any = None) -> ScalarResult:
        return (await self.execute(statement, parameters)).scalars()

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        async with self.conn.begin_nested():
            yield

    async def claim_once(self, scope: str, key: str) -> bool:
        # stepsaga's inbox table is not in DBOS's database; DBOS dedupes by workflow id.
        raise StatementError("claim_once needs stepsaga's inbox table")


async def dbos_child(orders: int, window: int, schemas: dict[str, str],
                     mode: str = "transactions") -> dict[str, Any]:
    """The DBOS side, in its own process: the workflow and its steps, driven with at
    most `window` orders open. `mode` ``transactions``: each step a datasource
    transaction (SQLAlchemy over psycopg, DBOS's checkpoint row in the same
    transaction); ``steps``: each step a ``@DBOS.step`` whose writes go through one
    asyncpg transaction of stepsaga's store (the same statements, prepared), DBOS
    recording the step's result in its system database after it."""
    from dbos import DBOS, AsyncSQLAlchemyDatasource, DBOSConfig, SetWorkflowID

    # The application tables, made and stocked as the stepsaga side makes them.
    ddl = SqlStore.from_url(PG.replace("postgresql://", "postgresql+asyncpg://"),
                            schema=schemas["app"], pool_size=1)
    await create_tables(ddl)
    await set_stock_levels(ddl, stock_for(orders))
    await ddl.close()

    config: DBOSConfig = {"name": "peer-dbos", "system_database_url": PG,
                          "dbos_system_schema": schemas["system"], "run_migrations": True,
                          "sys_db_pool_size": POOL, "log_level": "WARNING"}
    DBOS(config=config)
    ds: Any = None
    store: AsyncpgStore | None = None
    if mode == "transactions":
        ds = await AsyncSQLAlchemyDatasource.create(
            PG, schema=schemas["datasource"],
            engine_kwargs={"pool_size": POOL, "max_overflow": 0,
                           "connect_args": {"options": f"-c search_path={schemas['app']}"}})
    else:
        store = AsyncpgStore.from_url(PG, schema=schemas["app"], pool_size=POOL)
    saga = OrderSteps(orders)

    def durable(body: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """`body` as a DBOS step of this run's mode (registered under its own name)."""
        async def step(*args: Any) -> Any:
            if store is not None:
                async with store.transaction() as tx:
                    return await body(tx, *args)
            return await body(DatasourceTransaction(await ds.sql_session().connection()),
                              *args)

        step.__name__ = step.__qualname__ = body.__name__
        if store is not None:
            return DBOS.step()(step)  # type: ignore[no-any-return]
        return ds.transaction(isolation_level="READ COMMITTED")(step)  # type: ignore[no-any-return]

    steps = {body.__name__: durable(body)
             for body in (saga.place_order, saga.charge, saga.reserve, saga.refund,
                          saga.ship, saga.outcome)}

    @DBOS.workflow()
    async def order_workflow(order_id: str, i: int) -> str:
        """The saga: charge → reserve → ship; refund when the stock is missing."""
        await steps["place_order"](order_id, i)
        if not await steps["charge"](order_id, i):
            await steps["outcome"](order_id, CANCELED, "payment_declined",
                                   "payment declined: insufficient_funds", None)
            return CANCELED
        if not await steps["reserve"](order_id, i):
            await steps["refund"](order_id)
            await steps["outcome"](order_id, CANCELED, "inventory_unavailable",
                                   "inventory unavailable", None)
            return CANCELED
        tracking_id = await steps["ship"](order_id, i)
        await steps["outcome"](order_id, COMPLETED, None, None, tracking_id)
        return COMPLETED

    DBOS.launch()
    try:
        slots = asyncio.Semaphore(window)
        latencies: list[float] = []
        results: list[str] = []

        async def one(i: int) -> None:
            async with slots:
                started = time.perf_counter()
                with SetWorkflowID(f"order-{i}"):
                    handle = await DBOS.start_workflow_async(order_workflow, f"order-{i}", i)
                results.append(await handle.get_result())
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(orders)))
        elapsed = time.perf_counter() - started
    finally:
        DBOS.destroy()
        if ds is not None:
            await ds.engine.dispose()
        if store is not None:
            await store.close()
    canceled = sum(order_kind(i) != "happy" for i in range(orders))
    if sorted(results) != sorted([COMPLETED] * (orders - canceled) + [CANCELED] * canceled):
        raise AssertionError(f"unexpected outcomes: {sorted(set(results))}")
    cuts = statistics.quantiles(sorted(latencies), n=100, method="inclusive")
    return {"orders_per_second": orders / elapsed, "p50_ms": cuts[49], "p99_ms": cuts[98]}


async def stepsaga_child(orders: int, window: int) -> dict[str, Any]:
    """The stepsaga side, in its own process: benchmarks/order_to_cash.py's
    in-memory-transport run on PostgreSQL (asyncpg store, pool of :data:`POOL`)."""
    result = await memory_postgres(orders, window, timeout=600)
    return {"orders_per_second": result.orders_per_second, "p50_ms": result.p50_ms,
            "p99_ms": result.p99_ms}


async def run_child(side: str, orders: int, window: int) -> dict[str, Any]:
    """One run of `side` in a fresh process, with fresh schemas dropped afterwards."""
    tag = uuid.uuid4().hex[:8]
    schemas = {"app": f"dbos_app_{tag}", "system": f"dbos_sys_{tag}",
               "datasource": f"dbos_ds_{tag}"}
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--child", side, "--orders", str(orders),
            "--window", str(window), "--schemas", json.dumps(schemas),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 900)
        if proc.returncode != 0:
            raise RuntimeError(f"the {side} run failed ({proc.returncode}):\n"
                               f"{err.decode()[-4000:]}")
        lines = [x for x in out.decode().splitlines() if x.startswith("{")]
        report: dict[str, Any] = json.loads(lines[-1])
        return report
    finally:
        if side.startswith("dbos"):
            conn = await asyncpg.connect(PG)
            try:
                for schema in schemas.values():
                    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()


SIDES = ("stepsaga", "dbos", "dbos-steps")
LABELS = {"stepsaga": "stepsaga (in-memory transport, asyncpg store, batched commits)",
          "dbos": "DBOS Transact (workflow + datasource transactions)",
          "dbos-steps": "DBOS Transact (workflow + @DBOS.step steps, asyncpg writes)"}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=1000, help="orders per run (default 1000)")
    parser.add_argument("--window", type=int, default=32,
                        help="orders open at once on each side (default 32)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--schemas", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child in ("dbos", "dbos-steps"):
        report = await dbos_child(args.orders, args.window, json.loads(args.schemas),
                                  "transactions" if args.child == "dbos" else "steps")
        print(json.dumps(report), flush=True)
        return
    if args.child == "stepsaga":
        print(json.dumps(await stepsaga_child(args.orders, args.window)), flush=True)
        return
    if args.orders < 20 or args.window < 1:
        parser.error("--orders must be at least 20 (one order of each kind), --window ≥ 1")
    print(describe(("dbos", "sqlalchemy", "psycopg", "asyncpg", "pydantic")))
    print(f"parameters: {args.orders} orders per run, window {args.window} open orders, "
          f"{args.repeats} repeats, a fresh process per run; mix 90% happy / 5% declined / "
          f"5% out of stock (refund); {POOL} application connections a side; "
          f"PostgreSQL {PG.rpartition('@')[2]}\n")
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    for n in range(args.repeats):  # interleaved, the order rotating each repeat
        for side in SIDES[n % len(SIDES):] + SIDES[:n % len(SIDES)]:
            results[side].append(await run_child(side, args.orders, args.window))
    print("orders per second; latency submit → outcome (ms)")
    for side in SIDES:
        runs = results[side]
        print(f"  {LABELS[side]}")
        print(f"    orders/s     {summary([r['orders_per_second'] for r in runs])}")
        print(f"    p50 latency  {summary([r['p50_ms'] for r in runs])}")
        print(f"    p99 latency  {summary([r['p99_ms'] for r in runs])}")
    rate = {side: statistics.median(r["orders_per_second"] for r in results[side])
            for side in SIDES}
    print()
    for side in ("dbos", "dbos-steps"):
        print(f"stepsaga / DBOS ({'transactions' if side == 'dbos' else 'steps'}) "
              f"orders per second = {rate['stepsaga'] / rate[side]:.2f}")
    faster = max(rate["dbos"], rate["dbos-steps"])
    ratio = rate["stepsaga"] / faster
    verdict = "met" if ratio >= TARGET else "missed"
    print(f"stepsaga / the faster DBOS = {ratio:.2f} (target ≥ {TARGET:.0f}: {verdict})")
    print(f"load at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    run_main(main())
