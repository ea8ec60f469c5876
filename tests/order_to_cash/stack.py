"""The whole hybrid on the emulator, in process: the Order-to-Cash worker (saga and
services) over real SQS, the bridge's sinks putting hand-offs on a real EventBridge bus
and answering real task tokens, and the real ManualReview and SlowShipping workflows
started by real rules. The test plays the human reviewer through the review queue."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from bridge import BridgeSinks, attach_bridge
from bridge.contracts import REVIEW_REJECTED_ERROR, ReviewTask
from core_saga import Worker, WorkerSettings
from core_saga.emulator import Emulator
from core_saga.emulator.pytest_plugin import AwsScope
from core_saga.extension import decode_envelope
from core_saga.persistence import SagaStore
from core_saga.transports import SqsTransport
from examples.order_to_cash import OrderSagaSettings, build_worker, create_tables, order_service
from examples.order_to_cash.app import provision_local
from examples.order_to_cash.inventory import set_stock_levels
from examples.order_to_cash.orders import OrderService
from examples.order_to_cash.payment import FakePaymentGateway
from examples.order_to_cash.queues import ORDER_SAGA_QUEUE
from examples.order_to_cash.shipping import FakeCarrier
from supervisor_workflows import ManualReviewTimings, SlowShippingTimings
from supervisor_workflows.local import SupervisionResources

from .support import assert_books_balance, order_request

STOCK = {"BOOK-1": 20, "MUG-1": 20, "LAMP-1": 5}

FAST_REVIEW = ManualReviewTimings(review_timeout_seconds=6, escalation_timeout_seconds=3,
                                  delivery_timeout_seconds=5, delivery_max_attempts=3)
"""Reviews time out after 6 s, escalations after 3 s more."""
FAST_SHIPPING = SlowShippingTimings(deadline_seconds=6, interval_seconds=1, backoff_rate=1.5,
                                    max_delay_seconds=2, attempt_timeout_seconds=5,
                                    delivery_timeout_seconds=5, delivery_max_attempts=3)
"""SlowShipping gives up after about 6 s of retrying."""


@dataclass
class SupervisedStack:
    """The running stack and what a test looks at."""

    emulator: Emulator
    aws: AwsScope
    store: SagaStore
    settings: WorkerSettings
    resources: SupervisionResources
    gateway: FakePaymentGateway
    carrier: FakeCarrier
    saga_settings: OrderSagaSettings
    transport: SqsTransport
    worker: Worker
    sinks: BridgeSinks
    orders: OrderService
    _task: asyncio.Task[None] | None = None
    extra_workers: list[tuple[Worker, SqsTransport, BridgeSinks, asyncio.Task[None]]] = field(
        default_factory=list)

    # -- driving ------------------------------------------------------------------------
    async def submit(self, order_id: str, *lines: tuple[str, int, str],
                     risk_flags: tuple[str, ...] = ()) -> str:
        self.orders.new_order_id = lambda: order_id
        done = await self.orders.submit(order_request(*lines, risk_flags=risk_flags))
        return done.order_id

    async def review_tasks(self, wanted: int, *, timeout: float = 30.0) -> list[ReviewTask]:
        """Take `wanted` review tasks off the review queue (as the console's consumer
        would)."""
        sqs = self.aws.client("sqs")
        found: list[ReviewTask] = []
        deadline = time.monotonic() + timeout
        while len(found) < wanted and time.monotonic() < deadline:
            got = await asyncio.to_thread(
                sqs.receive_message, QueueUrl=self.resources.review_queue_url,
                MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in got.get("Messages", []):
                task = decode_envelope(message["Body"]).message
                assert isinstance(task, ReviewTask), task
                found.append(task)
                sqs.delete_message(QueueUrl=self.resources.review_queue_url,
                                   ReceiptHandle=message["ReceiptHandle"])
        assert len(found) >= wanted, f"{len(found)} review task(s), wanted {wanted}"
        return found

    def approve(self, task: ReviewTask, reviewer: str = "ann") -> None:
        self.aws.client("stepfunctions").send_task_success(
            taskToken=task.task_token,
            output=json.dumps({"decision": "approved", "reviewer": reviewer}))

    def reject(self, task: ReviewTask, cause: str) -> None:
        self.aws.client("stepfunctions").send_task_failure(
            taskToken=task.task_token, error=REVIEW_REJECTED_ERROR, cause=cause)

    # -- looking ------------------------------------------------------------------------
    async def outcome(self, order_id: str, timeout: float = 60.0) -> str:
        """The order's final status (waits for it)."""
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

    async def handoffs(self, order_id: str) -> list[dict[str, Any]]:
        record = await self.store.get_instance("OrderSaga", order_id)
        assert record is not None
        handoffs: list[dict[str, Any]] = record.data["handoffs"]
        return handoffs

    def executions(self, workflow: str) -> list[dict[str, Any]]:
        arn = self.resources.state_machines[workflow]
        listed: list[dict[str, Any]] = self.aws.client("stepfunctions").list_executions(
            stateMachineArn=arn)["executions"]
        return listed

    def finished(self, execution_arn: str, timeout: float = 60.0) -> dict[str, Any]:
        return self.emulator.wait_for_execution(execution_arn, timeout=timeout)

    def entered(self, execution_arn: str) -> list[str]:
        """The states the execution entered, in order."""
        return [e["stateEnteredEventDetails"]["name"]
                for e in self.emulator.execution_history(execution_arn)
                if "stateEnteredEventDetails" in e]

    async def books(self, order_ids: Iterable[str]) -> None:
        await assert_books_balance(self.store, self.gateway, STOCK, order_ids)

    # -- running ------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self.worker.run(install_signal_handlers=False))

    async def stop(self) -> None:
        self.worker.request_stop()
        if self._task is not None:
            await self._task
        await self.sinks.close()
        await self.transport.close()


async def new_worker(stack: SupervisedStack, settings: WorkerSettings | None = None
                     ) -> tuple[Worker, SqsTransport, BridgeSinks]:
    """Another worker like the stack's, on the same store, queues and fakes."""
    settings = settings or stack.settings
    transport = await SqsTransport.connect(settings.sqs())
    worker = build_worker(settings, stack.store, transport, saga_settings=stack.saga_settings,
                          gateway=stack.gateway, carrier=stack.carrier)
    sinks = await attach_bridge(worker, settings.aws())
    return worker, transport, sinks


@asynccontextmanager
async def supervised_stack(emulator: Emulator, aws: AwsScope, store: SagaStore,
                           monkeypatch: pytest.MonkeyPatch, *,
                           saga_settings: OrderSagaSettings | None = None,
                           manual_review: ManualReviewTimings = FAST_REVIEW,
                           slow_shipping: SlowShippingTimings = FAST_SHIPPING,
                           start: bool = True, **worker_options: Any
                           ) -> AsyncIterator[SupervisedStack]:
    """The stack on `store`, its names under the test's prefix; stopped at exit."""
    for key, value in emulator.env().items():  # fake credentials: nothing reaches AWS
        monkeypatch.setenv(key, value)
    resources = await asyncio.to_thread(provision_local, aws.client, aws.prefix,
                                        manual_review=manual_review,
                                        slow_shipping=slow_shipping)
    settings = WorkerSettings(**{
        "aws_endpoint_url": emulator.endpoint_url, "queue_prefix": aws.prefix,
        "wait_time_seconds": 1, "outbox_poll_seconds": 0.05, "delete_linger_seconds": 0.02,
        "send_linger_seconds": 0.01, "redelivery_base_seconds": 0, **worker_options})
    await create_tables(store)
    await set_stock_levels(store, STOCK)
    transport = await SqsTransport.connect(settings.sqs())
    reply_to = await transport.queue_url(ORDER_SAGA_QUEUE)
    base = saga_settings or OrderSagaSettings()
    saga_settings = OrderSagaSettings(**{
        **{f: getattr(base, f) for f in base.__dataclass_fields__},
        "supervision": dataclasses.replace(base.supervision, bus=resources.bus_name,
                                           reply_to=reply_to)})
    gateway = FakePaymentGateway(seed=11)
    carrier = FakeCarrier()
    worker = build_worker(settings, store, transport, saga_settings=saga_settings,
                          gateway=gateway, carrier=carrier)
    sinks = await attach_bridge(worker, settings.aws())
    stack = SupervisedStack(emulator, aws, store, settings, resources, gateway, carrier,
                            saga_settings, transport, worker, sinks, order_service(worker))
    if start:
        stack.start()
    try:
        yield stack
    finally:
        await stack.stop()
