"""The same paths through real workers over SQS on the local emulator (moto), on SQLite
and PostgreSQL (SQLAlchemy and raw asyncpg): core_saga.Worker, SqsTransport, the
system clock and short timers. The hand-offs to Step Functions are in
test_supervision_e2e.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core_saga import Message, Outbox, Worker, WorkerSettings
from core_saga.emulator import Emulator
from core_saga.emulator.pytest_plugin import AwsScope
from core_saga.persistence import SagaStore
from core_saga.transports import SqsTransport
from examples.order_to_cash import (
    OrderSagaSettings,
    build_worker,
    create_tables,
    order_service,
)
from examples.order_to_cash.inventory import set_stock_levels
from examples.order_to_cash.orders import OrderService
from examples.order_to_cash.payment import FakePaymentGateway
from examples.order_to_cash.queues import ALL_QUEUES
from examples.order_to_cash.shipping import FakeCarrier

from .support import assert_books_balance, order_request
from .test_app import free_port, http_order, start_app, stop

pytestmark = pytest.mark.emulator

STOCK = {"BOOK-1": 20, "MUG-1": 20, "LAMP-1": 1}


@dataclass
class OnSqs:
    worker: Worker
    store: SagaStore
    gateway: FakePaymentGateway
    carrier: FakeCarrier
    orders: OrderService
    outbox: Outbox
    aws: AwsScope

    async def publish(self, message: Message, order_id: str) -> None:
        """Publish as a supervisor would (through the outbox, onto SQS)."""
        async with self.outbox.transaction() as otx:
            otx.publish(message, correlation_id=order_id)

    async def send(self, queue: str, message: Message, order_id: str) -> None:
        async with self.outbox.transaction() as otx:
            otx.send(queue, message, correlation_id=order_id)

    async def outcome(self, order_id: str, timeout: float = 45.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            order = await self.orders.get(order_id)
            if order is not None and order.status != "Submitted":
                return order.status
            await asyncio.sleep(0.1)
        record = await self.store.get_instance("OrderSaga", order_id)
        raise AssertionError(f"order {order_id} did not end; saga: {record}; errors: "
                             f"{await self.store.list_errors()}")

    async def state(self, order_id: str, wanted: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = await self.store.get_instance("OrderSaga", order_id)
            if record is not None and record.state == wanted:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"saga {order_id} never reached {wanted}")


@asynccontextmanager
async def on_sqs(emulator: Emulator, aws: AwsScope, store: SagaStore,
                 monkeypatch: pytest.MonkeyPatch, settings: OrderSagaSettings
                 ) -> AsyncIterator[OnSqs]:
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    for queue in ALL_QUEUES:
        aws.create_queue(queue, max_receive_count=10)
    worker_settings = WorkerSettings(
        aws_endpoint_url=emulator.endpoint_url, queue_prefix=aws.prefix, wait_time_seconds=1,
        outbox_poll_seconds=0.05, delete_linger_seconds=0.02, send_linger_seconds=0.01,
        redelivery_base_seconds=0)
    await create_tables(store)
    await set_stock_levels(store, STOCK)
    transport = await SqsTransport.connect(worker_settings.sqs())
    gateway = FakePaymentGateway(seed=11)
    carrier = FakeCarrier()
    worker = build_worker(worker_settings, store, transport, saga_settings=settings,
                          gateway=gateway, carrier=carrier)
    app = OnSqs(worker, store, gateway, carrier, order_service(worker), worker.outbox(), aws)
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    try:
        yield app
    finally:
        worker.request_stop()
        await task
        await transport.close()


async def submit(app: OnSqs, order_id: str, *lines: tuple[str, int, str],
                 risk_flags: tuple[str, ...] = ()) -> str:
    app.orders.new_order_id = lambda: order_id
    done = await app.orders.submit(order_request(*lines, risk_flags=risk_flags))
    return done.order_id


async def books(app: OnSqs, order_ids: Iterable[str]) -> None:
    await assert_books_balance(app.store, app.gateway, STOCK, order_ids)


async def test_every_path_over_sqs(emulator: Emulator, aws: AwsScope, sql_store: SagaStore,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    settings = OrderSagaSettings(shipping_retry_budget=None,
                                 shipping_deadline=timedelta(seconds=2),
                                 shipping_retry_initial=timedelta(seconds=0.2),
                                 shipping_retry_max=timedelta(seconds=0.5))
    async with on_sqs(emulator, aws, sql_store, monkeypatch, settings) as app:
        app.gateway.decline("declined")
        app.carrier.refuse("carrier-down")
        orders = {
            "happy-1": await submit(app, "happy-1", ("BOOK-1", 2, "12.50")),
            "happy-2": await submit(app, "happy-2", ("MUG-1", 1, "8.00"), ("BOOK-1", 1, "1.00")),
            "declined": await submit(app, "declined"),
            "no-stock": await submit(app, "no-stock", ("LAMP-1", 2, "40.00")),
            "carrier-down": await submit(app, "carrier-down", ("MUG-1", 3, "8.00")),
        }
        outcomes = {name: await app.outcome(order_id) for name, order_id in orders.items()}
        assert outcomes == {"happy-1": "Completed", "happy-2": "Completed",
                            "declined": "Canceled", "no-stock": "Canceled",
                            "carrier-down": "Canceled"}
        down = await app.orders.get("carrier-down")
        assert down is not None and down.cancel_code == "shipping_deadline"
        await books(app, orders.values())
        assert app.gateway.net("happy-1") == Decimal("25.00")
        assert await app.store.list_errors() == []


async def test_the_app_split_over_two_processes_on_the_emulator(
        emulator: Emulator, aws: AwsScope, tmp_path: Path) -> None:
    """`python -m examples.order_to_cash` twice: the saga and the order API in one
    process, payment, inventory and shipping in the other, on one SQLite file."""
    for queue in ALL_QUEUES:
        aws.create_queue(queue)
    env = {**emulator.env(), "STEPSAGA_QUEUE_PREFIX": aws.prefix,
           "STEPSAGA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'split.db'}"}
    port = free_port()
    logs = tmp_path / "front.log", tmp_path / "back.log"
    back = start_app(["--transport", "sqs", "--services", "payment,inventory,shipping",
                      "--http-port", "0"], env, logs[1])
    front = start_app(["--transport", "sqs", "--services", "saga,orders",
                       "--http-port", str(port)], env, logs[0])
    try:
        view = await http_order(port, logs[0], timeout=60)
    finally:
        stop(front, logs[0])
        stop(back, logs[1])
    assert view["status"] == "Completed", (view, logs[1].read_text())
