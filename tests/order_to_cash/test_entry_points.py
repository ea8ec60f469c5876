"""Every entry point hosts the whole app: the production command (``python -m
examples.order_to_cash``) and the reference factory under ``stepsaga worker``, each a
real process on the emulator's queues, bus and ManualReview workflow, configured only by
the ``STEPSAGA_*`` settings a deployment prints. An order over the review threshold
reaches the ops console's JSON API as a pending review (the review consumer runs in the
app), a reviewer approves it there, and the order completes; the app's spans reach the
OTLP endpoint the settings name."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from bridge.console import ConsoleSettings, create_app
from core_saga import Outbox
from core_saga.emulator import Emulator, free_port
from core_saga.emulator.pytest_plugin import AwsScope
from core_saga.persistence import SqlStore
from examples.order_to_cash import OrderSaga, build_topology, create_tables
from examples.order_to_cash.app import provision_local
from examples.order_to_cash.orders import OrderService
from supervisor_workflows import ManualReviewTimings

from .support import order_request

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
STEPSAGA = str(Path(sys.executable).with_name("stepsaga"))
APPROVER = "approver-token-entry"
PATIENT_REVIEW = ManualReviewTimings(review_timeout_seconds=180, escalation_timeout_seconds=60,
                                     delivery_timeout_seconds=60, delivery_max_attempts=3)
"""Nobody times out on a loaded machine: the review waits for the test's click."""


def documented_worker_command() -> list[str]:
    """The ``stepsaga worker …`` line of docs/deploy.md's walkthrough."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    [line] = {m.group(0) for m in re.finditer(r"stepsaga worker \S+", text)}
    return line.split()


# -- the pieces a test runs -------------------------------------------------------------

class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that counts what it is sent."""

    paths: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.paths.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    _Collector.paths.clear()
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def deployed(emulator: Emulator, aws: AwsScope, tmp_path: Path,
             collector: str) -> dict[str, str]:
    """The queues, bus, rules, claim table and workflows a deployment makes, under the
    test's prefix; the settings a worker gets from them (what ``stepsaga local deploy``
    prints), its own database, and the OTLP endpoint."""
    resources = provision_local(aws.client, aws.prefix, manual_review=PATIENT_REVIEW)
    drop = ("STEPSAGA_", "AWS_", "MOTO_", "OTEL_")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(drop)},
            **emulator.env(), "STEPSAGA_QUEUE_PREFIX": aws.prefix,
            "STEPSAGA_EVENT_BUS": resources.bus_name,
            "STEPSAGA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
            "STEPSAGA_OTLP_ENDPOINT": collector, "STEPSAGA_WAIT_TIME_SECONDS": "1",
            "PYTHONPATH": str(ROOT)}


@contextmanager
def process(command: Sequence[str], env: dict[str, str], log: Path
            ) -> Iterator[subprocess.Popen[bytes]]:
    """`command` running in the repository; stopped with SIGTERM (it must exit 0)."""
    with log.open("wb") as out:
        running = subprocess.Popen(list(command), cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield running
    finally:
        running.send_signal(signal.SIGTERM)
        try:
            code = running.wait(60)
        except subprocess.TimeoutExpired:
            running.kill()
            running.wait()
            raise AssertionError(f"no exit on SIGTERM:\n{log.read_text()}") from None
    assert code == 0, log.read_text()[-6000:]


@asynccontextmanager
async def console(env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """The ops console on the app's database and the emulator, through its JSON API."""
    app = create_app(ConsoleSettings(
        database_url=env["STEPSAGA_DATABASE_URL"], aws_region=env["STEPSAGA_AWS_REGION"],
        aws_endpoint_url=env["STEPSAGA_AWS_ENDPOINT_URL"], console_sagas=[],
        console_tokens={APPROVER: {"name": "ann", "roles": ["approver"]}}),
        sagas=[OrderSaga])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://console.test",
                                 headers={"Authorization": f"Bearer {APPROVER}"}) as client:
        yield client
    await app.state.console.close()


async def pending_review(client: httpx.AsyncClient, order_id: str, log: Path, *,
                         timeout: float = 120) -> dict[str, Any]:
    """The order's pending review, once the console lists it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await client.get("/api/reviews")
        if response.status_code == 200:
            found = [r for r in response.json()["reviews"]
                     if r["correlationId"] == order_id]
            if found:
                review: dict[str, Any] = found[0]
                return review
        await asyncio.sleep(0.5)
    raise AssertionError(f"no review for {order_id} in the console:\n"
                         f"{log.read_text()[-6000:]}")


async def approve_until_done(client: httpx.AsyncClient, order_id: str, log: Path,
                             status: Any, *, timeout: float = 120) -> str:
    """Approve the order's review in the console; the order's final status."""
    review = await pending_review(client, order_id, log)
    decided = await client.post(f"/api/reviews/{review['id']}/approve",
                                json={"comment": "checked"})
    assert decided.status_code == 200, decided.text
    assert decided.json()["changed"] is True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = await status()
        if now not in (None, "Submitted"):
            return str(now)
        await asyncio.sleep(0.3)
    raise AssertionError(f"order {order_id} did not end:\n{log.read_text()[-6000:]}")


# -- the tests ------------------------------------------------------------------------------

async def test_python_m_hosts_the_review_consumer_and_traces(deployed: dict[str, str],
                                                              tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "app.log"
    command = [sys.executable, "-m", "examples.order_to_cash", "--transport", "sqs",
               "--http-port", str(port)]
    with process(command, deployed, log):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as api:
            deadline = time.monotonic() + 90
            while True:  # the order API is up once the app has started
                try:
                    placed = await api.post("/orders", json={
                        "customerId": "c-1", "currency": "EUR", "amount": "1500.00",
                        "lines": [{"sku": "LAMP-1", "quantity": 1, "unitPrice": "1500.00"}]})
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, log.read_text()
                    await asyncio.sleep(0.3)
            assert placed.status_code == 202, placed.text
            order_id = placed.json()["orderId"]

            async def status() -> object:
                return (await api.get(f"/orders/{order_id}")).json()["status"]

            async with console(deployed) as ops:
                assert await approve_until_done(ops, order_id, log, status) == "Completed"
    # tracing is configured by the settings: the spans were exported (at the latest on
    # the way out)
    assert "/v1/traces" in _Collector.paths, log.read_text()[-6000:]


async def test_stepsaga_worker_runs_the_whole_app_from_the_documented_factory(
        deployed: dict[str, str], tmp_path: Path) -> None:
    command = documented_worker_command()
    assert command[:2] == ["stepsaga", "worker"]
    log = tmp_path / "worker.log"
    store = SqlStore.from_url(deployed["STEPSAGA_DATABASE_URL"])
    try:
        await create_tables(store)  # as `stepsaga migrate` would, before the workers
        # An order placed by another process (the order API's), sent by the worker's
        # outbox poller.
        orders = OrderService(Outbox(store, topology=build_topology()))
        with process([STEPSAGA, *command[1:]], deployed, log):
            deadline = time.monotonic() + 90
            while "worker started on" not in log.read_text():
                assert time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.3)
            started = re.search(r"worker started on (.*) \(event loop (\w+)\)",
                                log.read_text())
            assert started is not None
            assert set(started.group(1).split(", ")) == {
                "order-saga", "orders", "payment", "inventory", "shipping", "review"}
            # the cli extra installs uvloop, and the worker runs on it by default
            assert started.group(2) == "uvloop"
            placed = await orders.submit(order_request(("LAMP-1", 1, "1500.00")))

            async def status() -> object:
                found = await orders.get(placed.order_id)
                return None if found is None else found.status

            async with console(deployed) as ops:
                assert await approve_until_done(ops, placed.order_id, log,
                                                status) == "Completed"
    finally:
        await store.close()
    assert "/v1/traces" in _Collector.paths, log.read_text()[-6000:]


def test_the_factory_refuses_a_database_the_services_cannot_use(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STEPSAGA_DATABASE_URL": "memory://",
           "COLUMNS": "200"}
    refused = subprocess.run([STEPSAGA, *documented_worker_command()[1:]], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120, check=False,
                             stdin=subprocess.DEVNULL)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "cannot start: database 'memory://'" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
