"""Orders per second of the same order saga written as a Restate workflow, beside
stepsaga, on the same PostgreSQL, in the same run.

Both sides run the Order-to-Cash shape of ``benchmarks/peer_dbos.py`` — place the order,
charge, reserve, ship (or refund when the stock is missing), record the outcome — with
the same mix (90% happy, 5% declined, 5% out of stock: charged then refunded), writing
the same rows through the app's repositories, closed loop with at most ``--window``
orders open on each side:

- stepsaga: ``benchmarks/order_to_cash.py``'s in-memory-transport run on PostgreSQL (the
  whole app in one process, raw asyncpg store, the worker's default batched commits):
  the order service's transaction, then eight message transactions an order, each with
  its inbox, instance or service rows, history and outbox.
- Restate: a ``restate.Workflow`` (``OrderSaga``) whose ``run`` handler does each step as
  a durable ``ctx.run_typed`` action — the Restate server journals every action's result
  before the workflow goes on — each action one asyncpg transaction of the step's
  writes (stepsaga's AsyncpgStore and the app's repositories, statements prepared: the
  same writes as the DBOS ``@DBOS.step`` variant). The service is served by Hypercorn
  (HTTP/2) in the driver's process; the Restate server (``@restatedev/restate-server``
  from npm, a native binary: RocksDB journal, its own fsyncs) runs beside it on the same
  2 cores; each order is one HTTP request to the ingress that returns the workflow's
  result. Latency is the client's (request → result).

The script installs what it needs: the ``bench`` extra (restate-sdk, hypercorn, httpx)
into this interpreter when they are missing, and ``npm ci`` in ``benchmarks/restate``
(the lock file pins the server; install scripts are not run). The Restate side runs in a
network namespace of its own with only loopback (``unshare -n``, which needs root): the
server reaches nothing past this machine (its telemetry is also off in the configuration
written here), and PostgreSQL is reached through its unix socket (``--pg-socket``). Each
run is a fresh process (and a fresh server, a fresh base directory), fresh schemas
dropped afterwards; the sides alternate.

    .venv/bin/python benchmarks/peer_restate.py [--orders 1000] [--window 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import PG, describe, run_main, summary
from _saga_steps import CANCELED, COMPLETED, OrderSteps
from order_to_cash import memory_postgres, order_kind, stock_for

from core_saga.persistence import AsyncpgStore
from examples.order_to_cash import create_tables
from examples.order_to_cash.inventory import set_stock_levels

TARGET = 2.0
"""stepsaga's orders/s over Restate's."""
POOL = 20
"""Connections to the application database on each side."""
SERVER_DIR = ROOT / "benchmarks" / "restate"
SERVER_BIN = (SERVER_DIR / "node_modules" / "@restatedev"
              / f"restate-server-linux-{'arm64' if platform.machine() == 'aarch64' else 'x64'}"
              / "bin" / "restate-server")
"""The native server the npm package ships (run directly, not through its Node shim)."""
INGRESS = "127.0.0.1:8080"
ADMIN = "127.0.0.1:9070"
SERVICE = "127.0.0.1:9080"
SIDES = ("stepsaga", "restate")
LABELS = {"stepsaga": "stepsaga (in-memory transport, asyncpg store, batched commits)",
          "restate": "Restate (workflow, ctx.run steps writing through asyncpg)"}


# -- installing -------------------------------------------------------------------------

def ensure_installed() -> None:
    """The bench extra's Restate pieces in this interpreter, the server under
    benchmarks/restate (npm ci from the lock file, install scripts off)."""
    missing = [name for name in ("restate", "hypercorn", "httpx")
               if importlib.util.find_spec(name) is None]
    if missing:
        print(f"installing the bench extra ({', '.join(missing)} missing)", file=sys.stderr,
              flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e",
                        f"{ROOT}[bench]"], check=True, stdout=sys.stderr)
    if not SERVER_BIN.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is needed to install the Restate server "
                             "(@restatedev/restate-server): install Node.js first")
        print("installing the Restate server (npm ci in benchmarks/restate)", file=sys.stderr,
              flush=True)
        subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                       cwd=SERVER_DIR, check=True, stdout=sys.stderr)  # figures own stdout


def server_version() -> str:
    done = subprocess.run([str(SERVER_BIN), "--version"], capture_output=True, text=True,
                          check=False)
    return (done.stdout.strip() or done.stderr.strip()).splitlines()[-1] \
        if done.returncode == 0 else "restate-server (version unknown)"


# -- the Restate side (in its own network namespace) -------------------------------------

SERVER_CONFIG = """\
cluster-name = "stepsaga-bench"
node-name = "bench"
disable-telemetry = true
base-dir = "{base}"
bind-address = "127.0.0.1:5122"
advertised-address = "http://127.0.0.1:5122/"
log-filter = "warn"

[admin]
bind-address = "{admin}"
disable-web-ui = true

[ingress]
bind-address = "{ingress}"
"""


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if await check():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout} s")
        await asyncio.sleep(0.1)


async def restate_child(orders: int, window: int, schema: str, pg: str) -> dict[str, Any]:
    """The Restate side: server, service and driver; run inside ``unshare -n``."""
    import httpx
    import psutil
    from _restate_app import build_app
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    store = AsyncpgStore.from_url(pg, schema=schema, pool_size=POOL)
    await create_tables(store)
    await set_stock_levels(store, stock_for(orders))
    app = build_app(OrderSteps(orders), store)
    base = Path(tempfile.mkdtemp(prefix="restate-bench-"))
    (base / "restate.toml").write_text(SERVER_CONFIG.format(
        base=base / "data", admin=ADMIN, ingress=INGRESS))
    log = (base / "server.log").open("w")
    stop = asyncio.Event()
    config = Config()
    config.bind = [SERVICE]
    config.loglevel = "WARNING"
    config.accesslog = None
    server = await asyncio.create_subprocess_exec(
        str(SERVER_BIN), "--config-file", str(base / "restate.toml"), "--no-logo",
        "--listen-mode", "tcp", stdout=log, stderr=subprocess.STDOUT)
    service = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    try:
        async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(
                max_connections=window + 4)) as client:
            async def healthy() -> bool:
                return (await client.get(f"http://{ADMIN}/health")).status_code == 200

            await _until(healthy, "the Restate server's admin API", 120)

            async def registered() -> bool:
                answer = await client.post(f"http://{ADMIN}/deployments",
                                           json={"uri": f"http://{SERVICE}"})
                return answer.status_code in (200, 201)

            await _until(registered, "registering the service", 60)
            slots = asyncio.Semaphore(window)
            latencies: list[float] = []
            results: list[str] = []

            async def one(i: int) -> None:
                async with slots:
                    started = time.perf_counter()
                    answer = await client.post(
                        f"http://{INGRESS}/OrderSaga/order-{i}/run", json=i)
                    answer.raise_for_status()
                    results.append(answer.json())
                    latencies.append((time.perf_counter() - started) * 1000)

            cpu = psutil.Process(server.pid).cpu_times()
            mine = os.times()
            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(orders)))
            elapsed = time.perf_counter() - started
            server_cpu = sum(psutil.Process(server.pid).cpu_times()[:2]) - sum(cpu[:2])
            after = os.times()
            own_cpu = after.user + after.system - mine.user - mine.system
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(service, 30)
        server.terminate()
        try:
            await asyncio.wait_for(server.wait(), 30)
        except TimeoutError:
            server.kill()
            await server.wait()
        log.close()
        shutil.rmtree(base, ignore_errors=True)
        await store.close()
    canceled = sum(order_kind(i) != "happy" for i in range(orders))
    if sorted(results) != sorted([COMPLETED] * (orders - canceled) + [CANCELED] * canceled):
        raise AssertionError(f"unexpected outcomes: {sorted(set(results))}")
    cuts = statistics.quantiles(sorted(latencies), n=100, method="inclusive")
    return {"orders_per_second": orders / elapsed, "p50_ms": cuts[49], "p99_ms": cuts[98],
            "cpu_ms_per_order": (own_cpu + server_cpu) * 1000 / orders,
            "server_cpu_ms_per_order": server_cpu * 1000 / orders}


async def stepsaga_child(orders: int, window: int) -> dict[str, Any]:
    """The stepsaga side: benchmarks/order_to_cash.py's in-memory-transport run on
    PostgreSQL (asyncpg store, pool of :data:`POOL`)."""
    mine = os.times()
    result = await memory_postgres(orders, window, timeout=600)
    after = os.times()
    cpu = after.user + after.system - mine.user - mine.system
    return {"orders_per_second": result.orders_per_second, "p50_ms": result.p50_ms,
            "p99_ms": result.p99_ms, "cpu_ms_per_order": cpu * 1000 / orders}


# -- the parent ---------------------------------------------------------------------------

def socket_url(socket_dir: str) -> str:
    """:data:`PG`'s user and database through the unix socket in `socket_dir`."""
    rest = PG.partition("://")[2]
    user, _, location = rest.rpartition("@")
    database = location.partition("/")[2] or "postgres"
    return f"postgresql://{user}@/{database}?host={socket_dir}"


async def run_child(side: str, orders: int, window: int, pg_socket: str) -> dict[str, Any]:
    """One run of `side` in a fresh process (the Restate side in a network namespace of
    its own), with its schema dropped afterwards."""
    schema = f"restate_{uuid.uuid4().hex[:8]}"
    command = [sys.executable, __file__, "--child", side, "--orders", str(orders),
               "--window", str(window), "--schema", schema, "--pg-socket", pg_socket]
    if side == "restate":  # loopback only: the server reaches nothing past this machine
        command = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                   *command]
    try:
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 900)
        if proc.returncode != 0:
            raise RuntimeError(f"the {side} run failed ({proc.returncode}):\n"
                               f"{err.decode()[-4000:]}")
        lines = [x for x in out.decode().splitlines() if x.startswith("{")]
        report: dict[str, Any] = json.loads(lines[-1])
        return report
    finally:
        if side == "restate":
            conn = await asyncpg.connect(PG)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()


def check_namespaces() -> None:
    done = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit("the Restate side runs in a network namespace of its own "
                         f"(unshare --net), which failed here: {done.stderr.strip()}; "
                         "run this script as root")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=1000, help="orders per run (default 1000)")
    parser.add_argument("--window", type=int, default=32,
                        help="orders open at once on each side (default 32)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pg-socket", default="/var/run/postgresql",
                        help="the directory of PostgreSQL's unix socket, for the Restate "
                             "side (default /var/run/postgresql)")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is None:
        if args.orders < 20 or args.window < 1:
            parser.error("--orders must be at least 20 (one order of each kind), "
                         "--window ≥ 1")
        if not Path(args.pg_socket, ".s.PGSQL.5432").exists():
            parser.error(f"no PostgreSQL socket in {args.pg_socket} (--pg-socket)")
        ensure_installed()
        check_namespaces()
    return args


async def main(args: argparse.Namespace) -> None:
    if args.child == "restate":
        print(json.dumps(await restate_child(args.orders, args.window, args.schema,
                                             socket_url(args.pg_socket))), flush=True)
        return
    if args.child == "stepsaga":
        print(json.dumps(await stepsaga_child(args.orders, args.window)), flush=True)
        return
    print(describe(("restate-sdk", "hypercorn", "httpx", "asyncpg", "pydantic")))
    print(f"restate server: {server_version()} (npm @restatedev/restate-server "
          f"{version_of_npm_package()})")
    print(f"parameters: {args.orders} orders per run, window {args.window} open orders, "
          f"{args.repeats} repeats, a fresh process (and server) per run; mix 90% happy / "
          f"5% declined / 5% out of stock (refund); {POOL} application connections a "
          f"side; PostgreSQL {PG.rpartition('@')[2]} (the Restate side through "
          f"{args.pg_socket})\n")
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    for n in range(args.repeats):  # interleaved, alternating which side goes first
        for side in (SIDES if n % 2 == 0 else tuple(reversed(SIDES))):
            results[side].append(await run_child(side, args.orders, args.window,
                                                 args.pg_socket))
    print("orders per second; latency submit → outcome (ms); CPU of the side's "
          "processes per order (ms; PostgreSQL's not counted)")
    for side in SIDES:
        runs = results[side]
        print(f"  {LABELS[side]}")
        print(f"    orders/s     {summary([r['orders_per_second'] for r in runs])}")
        print(f"    p50 latency  {summary([r['p50_ms'] for r in runs])}")
        print(f"    p99 latency  {summary([r['p99_ms'] for r in runs])}")
        print(f"    CPU/order    {summary([r['cpu_ms_per_order'] for r in runs])}")
        if side == "restate":
            print(f"    of which the server "
                  f"{summary([r['server_cpu_ms_per_order'] for r in runs])}")
    rate = {side: statistics.median(r["orders_per_second"] for r in results[side])
            for side in SIDES}
    ratio = rate["stepsaga"] / rate["restate"]
    verdict = "met" if ratio >= TARGET else "missed"
    print(f"\nstepsaga / Restate orders per second = {ratio:.2f} (target ≥ {TARGET:.0f}: "
          f"{verdict})")
    print(f"load at the end: {os.getloadavg()[0]:.2f}")


def version_of_npm_package() -> str:
    manifest = SERVER_DIR / "node_modules" / "@restatedev" / "restate-server" / "package.json"
    try:
        found: str = json.loads(manifest.read_text())["version"]
        return found
    except (OSError, KeyError, ValueError):
        return "(not installed)"


if __name__ == "__main__":
    run_main(main(arguments()))
