"""Shared by the console and review tests: a small supervised saga, a rig that runs it
with the review consumer against a real ManualReview execution on the emulator, and
helpers that seed the database."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bridge._handoffs import HandoffRecord, SupervisedState
from bridge.contracts import SupervisionCompleted, SupervisionRequested, SupervisionStarted
from bridge.contracts import handoff_id as make_handoff_id
from bridge.reviews import ReviewStore, ReviewTaskConsumer, StepFunctions
from core_saga import (
    AwsConfig,
    BehaviorContext,
    Envelope,
    Event,
    Message,
    Saga,
    State,
    Worker,
    WorkerSettings,
)
from core_saga.emulator import Emulator
from core_saga.persistence import SagaStore, store_from_url
from core_saga.transports import SqsTransport
from supervisor_workflows import ManualReviewTimings, manual_review_definition, render_definition

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
ROLE = "arn:aws:iam::123456789012:role/supervisor"
SAGA_TYPE = "ReviewedOrder"


class OrderPlaced(Message):
    message_namespace = "t.console"
    order_id: str
    amount: int = 2500


class OrderNeedsReview(Message):
    message_namespace = "t.console"
    order_id: str


class ReviewedOrderState(SupervisedState):
    amount: int = 0


def _hand_off(ctx: BehaviorContext[ReviewedOrderState, OrderPlaced]) -> None:
    ctx.saga.amount = ctx.message.amount
    ctx.saga.handoffs.append(HandoffRecord(
        handoff_id=make_handoff_id(SAGA_TYPE, ctx.saga.correlation_id, "ManualReview"),
        workflow="ManualReview", reason=f"amount {ctx.message.amount} over the limit",
        requested_at=ctx.now))


def _started(ctx: BehaviorContext[ReviewedOrderState, SupervisionStarted]) -> None:
    record = ctx.saga.handoff(ctx.message.handoff_id)
    if record is not None:
        record.execution_arn = ctx.message.execution_arn
        record.started_at = ctx.message.started_at


def _completed(ctx: BehaviorContext[ReviewedOrderState, SupervisionCompleted]) -> None:
    record = ctx.saga.handoff(ctx.message.handoff_id)
    if record is not None:
        record.outcome = ctx.message.outcome
        record.result = ctx.message.result
        record.completed_at = ctx.now


async def _acknowledge(ctx: BehaviorContext[ReviewedOrderState, SupervisionCompleted]
                       ) -> None:
    # Stands in for the bridge's outbox acknowledgement (SendTaskSuccess after commit).
    await StepFunctions(AwsConfig.from_env()).send_task_success(
        ctx.message.task_token, json.dumps({"acknowledged": True}))


class ReviewedOrderSaga(Saga[ReviewedOrderState]):
    """An order that always asks a person first."""

    saga_name = SAGA_TYPE
    summary_columns = ("Amount",)
    awaiting_review = State()
    approved = State(terminal=True)
    rejected = State(terminal=True)
    placed = Event(OrderPlaced, correlate_by=lambda m: m.order_id)
    started = Event(SupervisionStarted, correlate_by=lambda m: m.correlation_id)
    completed = Event(SupervisionCompleted, correlate_by=lambda m: m.correlation_id)

    @classmethod
    def summary(cls, state: ReviewedOrderState) -> dict[str, str]:
        return {"Amount": str(state.amount)}

    def define(self) -> None:
        self.initially(
            self.when(self.placed).then(_hand_off)
            .publish(lambda ctx: OrderNeedsReview(order_id=ctx.saga.correlation_id))
            .transition_to(self.awaiting_review))
        self.during(
            self.awaiting_review,
            self.when(self.started).then(_started),
            self.when(self.completed, filter=lambda ctx: ctx.message.outcome == "approved")
            .then(_completed).then_async(_acknowledge).transition_to(self.approved),
            self.when(self.completed, filter=lambda ctx: ctx.message.outcome != "approved")
            .then(_completed).then_async(_acknowledge).transition_to(self.rejected))


def wait_for(check: Callable[[], Any], *, timeout: float = 30.0, what: str = "it") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {timeout} s")
        time.sleep(0.2)


async def await_for(check: Callable[[], Awaitable[Any]], *, timeout: float = 30.0,
                    what: str = "it") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {timeout} s")
        await asyncio.sleep(0.2)


@dataclass
class ReviewRig:
    """A ManualReview state machine, its claim table, the saga and review queues, a
    database, and a worker hosting :class:`ReviewedOrderSaga` (replies) and the
    :class:`ReviewTaskConsumer` (reviews)."""

    emulator: Emulator
    database_url: str
    timings: ManualReviewTimings = field(default_factory=lambda: ManualReviewTimings(
        review_timeout_seconds=600, escalation_timeout_seconds=600,
        delivery_timeout_seconds=30, delivery_max_attempts=1))
    prefix: str = field(default_factory=lambda: f"cr{uuid.uuid4().hex[:8]}-")

    def __post_init__(self) -> None:
        self.sfn = self.emulator.boto3_client("stepfunctions")
        self.sqs = self.emulator.boto3_client("sqs")
        dynamodb = self.emulator.boto3_client("dynamodb")
        self.table = f"{self.prefix}claims"
        dynamodb.create_table(
            TableName=self.table, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "handoffId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "handoffId", "AttributeType": "S"}])
        self.saga_queue = self.emulator.create_queue(self.prefix + "saga", dlq=False).url
        self.review_queue = self.emulator.create_queue(self.prefix + "review", dlq=False).url
        definition = render_definition(manual_review_definition(self.timings), {
            "ClaimTableName": self.table, "ReviewQueueUrl": self.review_queue,
            "ShippingQueueUrl": self.review_queue})
        self.state_machine_arn: str = self.sfn.create_state_machine(
            name=f"{self.prefix}ManualReview", definition=definition, roleArn=ROLE,
            type="STANDARD")["stateMachineArn"]
        self.store: SagaStore | None = None
        self.reviews: ReviewStore | None = None
        self.worker: Worker | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        settings = WorkerSettings(database_url=self.database_url,
                                  aws_endpoint_url=self.emulator.endpoint_url,
                                  queue_prefix=self.prefix, wait_time_seconds=1,
                                  delete_linger_seconds=0, send_linger_seconds=0,
                                  outbox_poll_seconds=0.2, redelivery_base_seconds=0)
        self.store = store_from_url(self.database_url)
        await self.store.create_schema()
        self.reviews = ReviewStore.open(self.store)
        await self.reviews.create_table()
        transport = self.transport = await SqsTransport.connect(settings.sqs())
        self.worker = Worker(settings, store=self.store, transport=transport)
        self.worker.add_saga(ReviewedOrderSaga(), queue="saga")
        self.worker.add_consumer(ReviewTaskConsumer(self.reviews), queue="review")
        self._task = asyncio.create_task(self.worker.run(install_signal_handlers=False))

    async def stop(self) -> None:
        if self.worker is not None and self._task is not None:
            self.worker.request_stop()
            await self._task
            await self.transport.close()
        if self.reviews is not None:
            await self.reviews.close()
        if self.store is not None:
            await self.store.close()

    def place(self, order_id: str) -> None:
        """OrderPlaced on the saga's queue (with a traceparent)."""
        envelope = Envelope(OrderPlaced(order_id=order_id), correlation_id=order_id,
                            headers={"traceparent": TRACEPARENT})
        self.sqs.send_message(QueueUrl=self.saga_queue, MessageBody=envelope.encode().decode())

    def request(self, order_id: str) -> SupervisionRequested:
        return SupervisionRequested(
            handoff_id=make_handoff_id(SAGA_TYPE, order_id, "ManualReview"),
            saga_type=SAGA_TYPE, correlation_id=order_id, workflow="ManualReview",
            reason="amount 2500 over the limit",
            payload={"orderId": order_id, "amount": "2500.00", "currency": "EUR",
                     "lines": [{"sku": "LAMP-1", "quantity": 2, "unitPrice": "1250.00"}]},
            reply_to=self.saga_queue, traceparent=TRACEPARENT)

    def start_execution(self, order_id: str) -> str:
        """What the EventBridge rule does: StartExecution with the detail as input."""
        arn: str = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn, name=f"x-{uuid.uuid4().hex[:12]}",
            input=self.request(order_id).check_size().decode())["executionArn"]
        return arn

    def entered(self, arn: str) -> list[str]:
        events = self.emulator.execution_history(arn)
        return [e["stateEnteredEventDetails"]["name"] for e in events
                if "stateEnteredEventDetails" in e]

    async def state_of(self, order_id: str) -> str | None:
        assert self.store is not None
        record = await self.store.get_instance(SAGA_TYPE, order_id)
        return record.state if record else None

    async def pending_review(self, order_id: str) -> Any:
        assert self.reviews is not None
        found = await self.reviews.list_reviews(status="pending", correlation_id=order_id)
        return found[0] if found else None

    async def drive_to_review(self, order_id: str) -> tuple[str, Any]:
        """Place the order, start its review, wait until the review is stored and the
        saga knows the execution. Returns the execution ARN and the review."""
        self.place(order_id)
        await await_for(lambda: self.state_of(order_id), what="the saga instance")
        arn = await asyncio.to_thread(self.start_execution, order_id)
        review = await await_for(lambda: self.pending_review(order_id),
                                 what="the stored review")

        async def knows_arn() -> bool:
            assert self.store is not None
            record = await self.store.get_instance(SAGA_TYPE, order_id)
            return bool(record and record.data["handoffs"][0].get("execution_arn") == arn)

        await await_for(knows_arn, what="SupervisionStarted applied")
        return arn, review


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- talking to the console ------------------------------------------------------------------

ORIGIN = "http://console.test"
FORM = {"content-type": "application/x-www-form-urlencoded", "origin": ORIGIN}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def csrf_of(html: str) -> str:
    """The session's CSRF token, from any page's sign-out form."""
    import re

    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def sign_in(client: Any, token: str, *, next_page: str = "/") -> str:
    """Sign in through the form (same origin); the session's CSRF token."""
    from urllib.parse import urlencode

    answer = await client.post("/login", content=urlencode({"token": token, "next": next_page}),
                               headers=FORM)
    assert answer.status_code == 303, answer.text
    return csrf_of((await client.get(next_page)).text)


def form(fields: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(fields)
