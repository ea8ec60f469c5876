"""No lost hand-off, end to end on the emulator: a disabled rule never starts the
workflow, so the saga's deadline re-publishes and then gives the order its
``supervision_lost`` outcome (compensated once); an execution stopped with
StopExecution reaches the saga through Step Functions' status event and the status
rule, and the order gets its outcome."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from bridge import handoffs_of
from core_saga.emulator import Emulator
from core_saga.emulator.pytest_plugin import AwsScope
from core_saga.persistence import SagaStore
from examples.order_to_cash import OrderSagaSettings

from .stack import supervised_stack
from .support import ledger_of

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(180)]


async def test_a_disabled_rule_ends_in_supervision_lost_within_the_deadline_compensated_once(
        emulator: Emulator, aws: AwsScope, prod_store: SagaStore,
        monkeypatch: pytest.MonkeyPatch) -> None:
    base = OrderSagaSettings()
    settings = OrderSagaSettings(
        shipping_retry_budget=1, shipping_retry_initial=timedelta(seconds=0.2),
        supervision=dataclasses.replace(base.supervision, started_deadline=timedelta(seconds=2),
                                        republishes=1))
    async with supervised_stack(emulator, aws, prod_store, monkeypatch,
                                saga_settings=settings) as stack:
        events = aws.client("events")
        rule = f"{aws.prefix}supervision-SlowShipping"
        events.disable_rule(Name=rule, EventBusName=stack.resources.bus_name)
        stack.carrier.refuse("stuck")
        await stack.submit("stuck")
        assert await stack.outcome("stuck", timeout=90) == "Canceled"
        order = await stack.orders.get("stuck")
        assert order is not None and order.cancel_code == "supervision_lost"
        assert order.reason is not None and "SlowShipping not_started" in order.reason
        (handoff,) = handoffs_of({"handoffs": await stack.handoffs("stuck")})
        assert (handoff.lost, handoff.publishes) == ("not_started", 2)
        assert handoff.lost_at is not None
        waited = handoff.lost_at - handoff.requested_at
        # two publishes, each waiting its 2 s deadline; then at once (polling aside)
        assert timedelta(seconds=4) <= waited < timedelta(seconds=30), waited
        assert stack.executions("SlowShipping") == []
        refunds = [e for e in await ledger_of(prod_store, "stuck") if e.kind == "refund"]
        assert len(refunds) == 1, refunds
        await stack.books(["stuck"])  # refunded, stock released, no live shipment


async def test_an_aborted_execution_reaches_the_saga_and_the_order_gets_its_outcome(
        emulator: Emulator, aws: AwsScope, prod_store: SagaStore,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with supervised_stack(emulator, aws, prod_store, monkeypatch) as stack:
        await stack.submit("big", ("LAMP-1", 1, "1500.00"))
        await stack.review_tasks(1)  # the execution runs and waits for a person
        await stack.state("big", "AwaitingReview")
        (execution,) = stack.executions("ManualReview")
        arn = execution["executionArn"]
        aws.client("stepfunctions").stop_execution(executionArn=arn, cause="stuck order")
        assert (await asyncio.to_thread(stack.finished, arn))["status"] == "ABORTED"
        assert await stack.outcome("big") == "Canceled"
        order = await stack.orders.get("big")
        assert order is not None and order.cancel_code == "supervision_lost"
        assert order.reason is not None and "execution_aborted" in order.reason
        assert "ABORTED" in order.reason
        (handoff,) = handoffs_of({"handoffs": await stack.handoffs("big")})
        assert (handoff.execution_arn, handoff.execution_status) == (arn, "ABORTED")
        assert stack.gateway.calls == 0  # nothing was charged
        await stack.books(["big"])
