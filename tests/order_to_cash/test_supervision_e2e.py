"""Issue 5, end to end on the emulator: the Order-to-Cash saga hands orders to the real
ManualReview and SlowShipping workflows through a real EventBridge bus and rules, and
takes their outcomes back through task-token callbacks. Each test checks the saga's
final state, the ledger (charges − refunds, stock, shipments) and the execution's
history (GetExecutionHistory)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from bridge import StepFunctionsSink
from bridge.contracts import SupervisionRequested, event_source
from core_saga.emulator import Emulator
from core_saga.emulator.pytest_plugin import AwsScope
from core_saga.persistence import SagaStore
from examples.order_to_cash import OrderSagaSettings

from .stack import FAST_SHIPPING, new_worker, supervised_stack

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(180)]

APPROVE_PATH = ["ClaimHandoff", "HasTraceparent", "WithoutTraceparent", "ReportStarted",
                "AwaitReview", "CheckDecision", "Approved", "DeliverOutcome", "Delivered"]


def _only_execution(stack: Any, workflow: str) -> str:
    (execution,) = stack.executions(workflow)
    arn: str = execution["executionArn"]
    return arn


def _charges(stack: Any, order_id: str) -> int:
    return sum(1 for o, _, r in stack.gateway.charges.values() if o == order_id and r.approved)


async def _wait_executions(stack: Any, workflow: str, count: int, timeout: float = 20) -> None:
    for _ in range(int(timeout * 10)):
        if len(stack.executions(workflow)) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow}: fewer than {count} execution(s)")


async def test_review_approved(emulator: Emulator, aws: AwsScope, prod_store: SagaStore,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    async with supervised_stack(emulator, aws, prod_store, monkeypatch) as stack:
        await stack.submit("big", ("LAMP-1", 1, "1500.00"))
        (task,) = await stack.review_tasks(1)
        assert (task.correlation_id, task.escalated) == ("big", False)
        assert task.payload["amount"] == "1500.00"
        await stack.state("big", "AwaitingReview")
        assert stack.gateway.calls == 0  # nothing charged before the decision
        stack.approve(task, reviewer="ann")
        assert await stack.outcome("big") == "Completed"
        arn = _only_execution(stack, "ManualReview")
        described = await asyncio.to_thread(stack.finished, arn)
        assert described["status"] == "SUCCEEDED"
        assert stack.entered(arn) == APPROVE_PATH
        (handoff,) = await stack.handoffs("big")
        assert (handoff["execution_arn"], handoff["outcome"]) == (arn, "approved")
        assert handoff["result"]["reviewer"] == "ann"
        await stack.books(["big"])
        assert stack.sinks.events.entries_sent == 1 and stack.sinks.tasks.answered == 1
        assert await prod_store.list_errors() == []


async def test_review_rejected(emulator: Emulator, aws: AwsScope, sqlite_store: SagaStore,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    async with supervised_stack(emulator, aws, sqlite_store, monkeypatch) as stack:
        await stack.submit("flagged", risk_flags=("new_account",))
        (task,) = await stack.review_tasks(1)
        assert task.reason == "risk flag: new_account"
        stack.reject(task, "stolen card")
        assert await stack.outcome("flagged") == "Canceled"
        order = await stack.orders.get("flagged")
        assert order is not None
        assert (order.cancel_code, order.reason) == ("review_rejected",
                                                     "rejected in review: stolen card")
        arn = _only_execution(stack, "ManualReview")
        assert (await asyncio.to_thread(stack.finished, arn))["status"] == "SUCCEEDED"
        assert "Rejected" in stack.entered(arn) and "Approved" not in stack.entered(arn)
        assert stack.gateway.calls == 0
        await stack.books(["flagged"])


async def test_review_timed_out_escalates_once_then_cancels(
        emulator: Emulator, aws: AwsScope, sqlite_store: SagaStore,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with supervised_stack(emulator, aws, sqlite_store, monkeypatch) as stack:
        await stack.submit("ignored", risk_flags=("address_mismatch",))
        first, escalated = await stack.review_tasks(2, timeout=30)
        assert (first.escalated, escalated.escalated) == (False, True)
        assert await stack.outcome("ignored", timeout=60) == "Canceled"
        order = await stack.orders.get("ignored")
        assert order is not None and order.cancel_code == "review_timed_out"
        arn = _only_execution(stack, "ManualReview")
        # The order ends when the saga takes the outcome; the workflow enters Delivered
        # when the saga's acknowledgement reaches it, a moment later.
        assert (await asyncio.to_thread(stack.finished, arn))["status"] == "SUCCEEDED"
        entered = stack.entered(arn)
        assert entered.index("AwaitReview") < entered.index("AwaitEscalatedReview") < \
            entered.index("TimedOut") < entered.index("Delivered")
        await stack.books(["ignored"])


async def test_a_duplicate_supervision_requested_raises_one_human_task(
        emulator: Emulator, aws: AwsScope, sqlite_store: SagaStore,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with supervised_stack(emulator, aws, sqlite_store, monkeypatch) as stack:
        await stack.submit("twice", ("LAMP-1", 1, "1500.00"))
        (task,) = await stack.review_tasks(1)
        # EventBridge delivers at least once: the same entry again.
        (record,) = await stack.handoffs("twice")
        request = SupervisionRequested(
            handoff_id=record["handoff_id"], saga_type="OrderSaga", correlation_id="twice",
            workflow="ManualReview", reason=record["reason"], payload=task.payload,
            reply_to=stack.saga_settings.supervision.reply_to)
        stack.aws.client("events").put_events(Entries=[{
            "Source": event_source("OrderSaga"), "DetailType": "SupervisionRequested",
            "Detail": request.detail_json().decode(), "EventBusName": stack.resources.bus_name}])
        await _wait_executions(stack, "ManualReview", 2)
        duplicate = next(e["executionArn"] for e in stack.executions("ManualReview")
                         if e["executionArn"] != record["execution_arn"])
        assert (await asyncio.to_thread(stack.finished, duplicate))["status"] == "SUCCEEDED"
        assert stack.entered(duplicate) == ["ClaimHandoff", "AlreadyClaimed"]
        sqs = stack.aws.client("sqs")
        left = sqs.receive_message(QueueUrl=stack.resources.review_queue_url, WaitTimeSeconds=1)
        assert left.get("Messages", []) == []  # one human task only
        stack.approve(task)
        assert await stack.outcome("twice") == "Completed"
        assert _charges(stack, "twice") == 1
        await stack.books(["twice"])


async def test_shipping_recovered_within_the_deadline(
        emulator: Emulator, aws: AwsScope, sqlite_store: SagaStore,
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = OrderSagaSettings(shipping_retry_budget=1,
                                 shipping_retry_initial=timedelta(seconds=0.2))
    # A deadline far beyond the 1.5 s outage: on a loaded machine the time between the
    # execution's start and the carrier's recovery must never reach it.
    roomy = dataclasses.replace(FAST_SHIPPING, deadline_seconds=60)
    async with supervised_stack(emulator, aws, sqlite_store, monkeypatch,
                                saga_settings=settings, slow_shipping=roomy) as stack:
        stack.carrier.refuse("late")
        await stack.submit("late")
        await stack.state("late", "AwaitingShippingSupervision")
        await _wait_executions(stack, "SlowShipping", 1)
        arn = _only_execution(stack, "SlowShipping")
        await asyncio.sleep(1.5)  # a failed attempt or two inside the workflow
        stack.carrier.accept("late")
        assert await stack.outcome("late") == "Completed"
        assert (await asyncio.to_thread(stack.finished, arn))["status"] == "SUCCEEDED"
        entered = stack.entered(arn)
        assert entered.count("RequestShipment") >= 1 and "Shipped" in entered
        history = stack.emulator.execution_history(arn)
        failures = [e for e in history if e["type"] == "TaskFailed"]
        assert failures and failures[0]["taskFailedEventDetails"]["error"] == "ShippingUnavailable"
        order = await stack.orders.get("late")
        (handoff,) = await stack.handoffs("late")
        assert order is not None and handoff["result"]["trackingId"] == order.tracking_id
        await stack.books(["late"])


async def test_shipping_never_recovered_compensates(
        emulator: Emulator, aws: AwsScope, prod_store: SagaStore,
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = OrderSagaSettings(shipping_retry_budget=1,
                                 shipping_retry_initial=timedelta(seconds=0.2))
    async with supervised_stack(emulator, aws, prod_store, monkeypatch,
                                saga_settings=settings) as stack:
        stack.carrier.refuse("lost")
        await stack.submit("lost")
        assert await stack.outcome("lost", timeout=90) == "Canceled"
        order = await stack.orders.get("lost")
        assert order is not None and order.cancel_code == "shipping_abandoned"
        arn = _only_execution(stack, "SlowShipping")
        assert (await asyncio.to_thread(stack.finished, arn))["status"] == "SUCCEEDED"
        assert "ShippingFailed" in stack.entered(arn)
        await stack.books(["lost"])  # refunded, stock released, no live shipment


async def _stopped() -> None:
    """The stack's worker is stopped already."""


class CrashingSink:
    """A task-answer sink whose process dies as it is about to call Step Functions."""

    batch_size = 10

    def __init__(self) -> None:
        self.seen = asyncio.Event()

    async def deliver(self, destination: str, rows: Any) -> dict[int, str]:
        self.seen.set()
        raise ConnectionResetError("the worker process died before SendTaskSuccess")


async def test_a_saga_crash_between_taking_the_outcome_and_acknowledging_it(
        emulator: Emulator, aws: AwsScope, prod_store: SagaStore,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The saga commits SupervisionCompleted, then its process dies before
    SendTaskSuccess. Another worker finds the acknowledgement in the outbox (after the
    row's lease) and sends it; if the workflow's delivery timed out first, it delivers
    again and that delivery is acknowledged too. Either way the execution ends once, and
    the saga applies the outcome once."""
    async with supervised_stack(emulator, aws, prod_store, monkeypatch,
                                visibility_timeout=2) as stack:
        crashing = CrashingSink()
        stack.worker.add_sink("sfn-task", crashing)
        await stack.submit("crash", ("LAMP-1", 1, "1500.00"))
        (task,) = await stack.review_tasks(1)
        stack.approve(task)
        await asyncio.wait_for(crashing.seen.wait(), 30)
        # The outcome is committed (the order moved on), the acknowledgement is not sent,
        # and the worker is gone.
        (record,) = await stack.handoffs("crash")
        assert record["outcome"] == "approved"
        await stack.stop()
        stack.stop = _stopped  # type: ignore[method-assign]
        worker, transport, sinks = await new_worker(stack)
        task2 = asyncio.create_task(worker.run(install_signal_handlers=False))
        try:
            assert await stack.outcome("crash") == "Completed"
            arn = _only_execution(stack, "ManualReview")
            assert (await asyncio.to_thread(stack.finished, arn))["status"] == "SUCCEEDED"
            assert stack.entered(arn).count("Delivered") == 1
            history = [h for h in await prod_store.history("OrderSaga", "crash")
                       if h.event == "SupervisionCompleted"]
            assert len(history) == 1  # applied once
            assert _charges(stack, "crash") == 1
            assert isinstance(sinks.tasks, StepFunctionsSink)
            assert sinks.tasks.answered + sinks.tasks.gone >= 1
            await stack.books(["crash"])
        finally:
            worker.request_stop()
            await task2
            await sinks.close()
            await transport.close()
