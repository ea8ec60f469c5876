"""The runnable app: build_worker on a real worker loop (in-memory queues), a deployment
split over two workers, the command line, and `python -m examples.order_to_cash`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from core_saga import Worker, WorkerSettings, _clock
from core_saga.persistence import SagaStore
from core_saga.transports import InMemoryTransport
from examples.order_to_cash import build_worker, create_tables, order_service
from examples.order_to_cash.app import APP_SERVICES, main, open_store, parse_args
from examples.order_to_cash.inventory import set_stock_levels
from examples.order_to_cash.orders import OrderService
from examples.order_to_cash.payment import FakePaymentGateway

from ..conftest import pg_asyncpg_store, requires_postgres
from .support import order_request

ROOT = Path(__file__).resolve().parents[2]


def fast() -> WorkerSettings:
    """Worker settings for tests: short polls and lingers."""
    return WorkerSettings(wait_time_seconds=1, outbox_poll_seconds=0.05,
                          delete_linger_seconds=0.01, send_linger_seconds=0.01,
                          redelivery_base_seconds=0)


@asynccontextmanager
async def running(*workers: Worker) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(w.run(install_signal_handlers=False)) for w in workers]
    try:
        yield
    finally:
        for worker in workers:
            worker.request_stop()
        await asyncio.gather(*tasks)


async def wait_for_outcome(service: OrderService, order_id: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order = await service.get(order_id)
        if order is not None and order.status != "Submitted":
            return order.status
        await asyncio.sleep(0.05)
    raise AssertionError(f"order {order_id} did not end within {timeout} s")


async def _prepared(store: SagaStore) -> None:
    await create_tables(store)
    await set_stock_levels(store, {"BOOK-1": 10, "LAMP-1": 1})


async def test_one_worker_runs_every_service(store: SagaStore) -> None:
    await _prepared(store)
    gateway = FakePaymentGateway(seed=3)
    gateway.decline("declined")
    worker = build_worker(fast(), store, InMemoryTransport(), gateway=gateway)
    assert set(worker.queues) == {"order-saga", "orders", "payment", "inventory", "shipping"}
    service = order_service(worker)
    service.new_order_id = iter(["fine", "declined", "no-stock"]).__next__
    async with running(worker):
        fine = await service.submit(order_request())
        declined = await service.submit(order_request())
        no_stock = await service.submit(order_request(("LAMP-1", 2, "40.00")))
        outcomes = [await wait_for_outcome(service, o.order_id)
                    for o in (fine, declined, no_stock)]
    assert outcomes == ["Completed", "Canceled", "Canceled"]
    assert gateway.net("fine") == Decimal("25.00") and gateway.net("no-stock") == 0


async def test_the_services_can_be_split_over_processes(tmp_path: Path) -> None:
    """Two workers (as two processes would) on one database and one set of queues."""
    from core_saga.persistence import SqlStore

    store = SqlStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'split.db'}")
    await _prepared(store)
    transport = InMemoryTransport()
    front = build_worker(fast(), store, transport, services=["saga", "orders"])
    back = build_worker(fast(), store, transport,
                        services=["payment", "inventory", "shipping"])
    assert set(front.queues) == {"order-saga", "orders"}
    assert set(back.queues) == {"payment", "inventory", "shipping"}
    service = order_service(front)
    async with running(front, back):
        done = await service.submit(order_request())
        assert await wait_for_outcome(service, done.order_id) == "Completed"
    await store.close()


def test_the_command_line_checks_what_it_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    options = parse_args(["--services", "saga, payment", "--stock", "BOOK-1=5"])
    assert options.services == ("saga", "payment") and options.stock == {"BOOK-1": 5}
    assert parse_args([]).services == APP_SERVICES
    for bad, said in ((["--services", "saga,billing"], "unknown service(s) billing"),
                      (["--stock", "BOOK-1"], "write SKU=QUANTITY"),
                      (["--transport", "memory", "--services", "saga"], "host every service")):
        with pytest.raises(SystemExit):
            parse_args(bad)
        assert said in capsys.readouterr().err


def test_a_database_without_sql_tables_is_refused_before_anything_starts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="keep their rows in SQL tables"):
        open_store(WorkerSettings(database_url="memory://"))
    monkeypatch.setenv("STEPSAGA_DATABASE_URL", "memory://")
    with pytest.raises(SystemExit, match="'memory://': the Order-to-Cash services keep "
                                         "their rows in SQL tables; use a SQLite file"):
        main(["--transport", "memory"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_app(args: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python -m examples.order_to_cash ARGS` in the repository, logging to `log`."""
    return subprocess.Popen(
        [sys.executable, "-m", "examples.order_to_cash", *args], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "STEPSAGA_WAIT_TIME_SECONDS": "1",
             "STEPSAGA_OUTBOX_POLL_SECONDS": "0.1", **env},
        stdout=log.open("wb"), stderr=subprocess.STDOUT)


async def http_order(port: int, log: Path, *, timeout: float = 30.0) -> dict[str, object]:
    """POST one order to the app on `port`, then poll it until it ends."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        while True:
            try:
                response = await client.post("/orders", json={
                    "customerId": "c-1", "currency": "EUR", "amount": "25.00",
                    "lines": [{"sku": "BOOK-1", "quantity": 2, "unitPrice": "12.50"}]})
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError(log.read_text()) from None
                await asyncio.sleep(0.2)
        assert response.status_code == 202, response.text
        order_id = response.json()["orderId"]
        while time.monotonic() < deadline:
            view: dict[str, object] = (await client.get(f"/orders/{order_id}")).json()
            if view["status"] != "Submitted":
                return view
            await asyncio.sleep(0.1)
    raise AssertionError(f"order {order_id} did not end:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"the app did not stop on SIGTERM:\n{log.read_text()}") from None
    assert code == 0, log.read_text()


async def test_python_m_runs_the_app_in_one_process(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "app.log"
    process = start_app(["--transport", "memory", "--http-port", str(port)],
                        {"STEPSAGA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"},
                        log)
    try:
        view = await http_order(port, log)
    finally:
        stop(process, log)
    assert view["status"] == "Completed" and str(view["trackingId"]).startswith("FAKEX-")
    assert "demo stock set" in log.read_text()


@pytest.mark.postgres
@requires_postgres
async def test_the_app_worker_keeps_the_databases_time_on_a_host_whose_clock_is_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """build_worker (every entry point's worker) leaves the clock to the worker: the
    database's (`database_clock`, on by default), so a host 15 s ahead neither fires the
    app's timers early nor stamps its rows late; its services read the same clock."""
    class Ahead(datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
            return datetime.now(tz) + timedelta(seconds=15)  # type: ignore[arg-type]

    monkeypatch.setattr(_clock, "datetime", Ahead)
    store = pg_asyncpg_store()
    await create_tables(store)
    try:
        worker = build_worker(fast(), store, InMemoryTransport())
        assert _clock.SystemClock().now() - datetime.now(UTC) > timedelta(seconds=14)
        async with running(worker):
            deadline = time.monotonic() + 20
            while not worker._started.is_set():
                assert time.monotonic() < deadline, "the worker did not start"
                await asyncio.sleep(0.02)
            assert abs(worker.clock.now() - datetime.now(UTC)) < timedelta(seconds=2)
            assert worker.dispatcher.clock is worker.clock  # timers are due by it
    finally:
        await store.drop_schema()
        await store.close()
