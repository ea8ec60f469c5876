"""The hand-offs of the Order-to-Cash saga, in process: the saga emits
``SupervisionRequested`` through the ``hand_off`` activity, and the test plays the
workflow with ``bridge.testing.SupervisorDouble`` (``SupervisionStarted``, then
``SupervisionCompleted`` with a task token). tests/order_to_cash/test_supervision_e2e.py
runs the same paths on the real workflows in the emulator."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import orjson
import pytest

from bridge import handoffs_of
from bridge.contracts import (
    SupervisionRequested,
    event_source,
    handoff_id,
)
from bridge.testing import SupervisorDouble
from core_saga.persistence import SagaStore
from examples.order_to_cash import OrderSaga, OrderSagaSettings
from examples.order_to_cash.messages import (
    CancelShipment,
    ChargePayment,
    CreateShipment,
    OrderLine,
    OrderSubmitted,
    RefundPayment,
    ReleaseInventory,
    StockLine,
)
from examples.order_to_cash.queues import ORDER_SAGA_QUEUE, SHIPPING_QUEUE
from examples.order_to_cash.settings import LOCAL_REPLY_TO

from .support import OrderToCash, order_request, start_order_to_cash

S = OrderSaga
BIG = order_request(("LAMP-1", 1, "1500.00"))


async def _reviewed(store: SagaStore, request: object = BIG) -> tuple[OrderToCash, str,
                                                                      SupervisionRequested]:
    app = await start_order_to_cash(store)
    order_id = await app.submit(request)  # type: ignore[arg-type]
    await app.h.assert_state(S, order_id, S.awaiting_review)
    (handoff,) = app.supervisor.requests("ManualReview")
    return app, order_id, handoff


async def test_an_order_over_the_threshold_is_handed_to_manual_review_before_any_charge(
        store: SagaStore) -> None:
    app, order_id, request = await _reviewed(store)
    assert app.h.sent(ChargePayment) == [] and app.gateway.calls == 0
    assert request.handoff_id == handoff_id("OrderSaga", order_id, "ManualReview")
    assert (request.saga_type, request.correlation_id, request.reply_to) == (
        "OrderSaga", order_id, LOCAL_REPLY_TO)
    assert request.reason == "amount 1500.00 EUR is over the review threshold 1000.00"
    assert request.payload["amount"] == "1500.00" and request.payload["orderId"] == order_id
    (entry,) = app.supervisor.events.bodies()
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (
        event_source("OrderSaga"), "SupervisionRequested", "stepsaga")
    (record,) = (await app.saga(order_id)).handoffs
    assert (record.handoff_id, record.workflow, record.pending) == (
        request.handoff_id, "ManualReview", True)


async def test_started_records_the_execution_and_approval_charges_and_completes(
        store: SagaStore) -> None:
    app, order_id, request = await _reviewed(store)
    started = await app.supervisor.start(request)
    (record,) = (await app.saga(order_id)).handoffs
    assert record.execution_arn == started.execution_arn
    await app.h.assert_state(S, order_id, S.awaiting_review)
    token = await app.supervisor.complete(request, "approved", {"reviewer": "ann"})
    await app.h.assert_state(S, order_id, S.completed)
    assert app.supervisor.acknowledged(token) == 1
    (record,) = (await app.saga(order_id)).handoffs
    assert (record.outcome, record.result) == ("approved", {"reviewer": "ann"})
    assert app.h.faults == []
    await app.assert_books_balance(order_id)


async def test_a_rejection_cancels_without_charging(store: SagaStore) -> None:
    app, order_id, request = await _reviewed(
        store, order_request(risk_flags=("address_mismatch",)))
    assert request.reason == "risk flag: address_mismatch"
    await app.supervisor.complete(request, "rejected", {
        "error": "ReviewRejected", "cause": "stolen card"})
    await app.h.assert_state(S, order_id, S.canceled)
    order = await app.order(order_id)
    assert (order.cancel_code, order.reason) == ("review_rejected",
                                                 "rejected in review: stolen card")
    assert app.h.sent(ChargePayment) == [] and app.gateway.calls == 0
    await app.assert_books_balance(order_id)


async def test_a_review_nobody_answers_in_time_cancels_the_order(store: SagaStore) -> None:
    app, order_id, request = await _reviewed(store)
    await app.supervisor.complete(request, "timed_out", {"error": "States.Timeout"})
    await app.h.assert_state(S, order_id, S.canceled)
    order = await app.order(order_id)
    assert (order.cancel_code, order.reason) == ("review_timed_out",
                                                 "nobody reviewed the order in time")
    await app.assert_books_balance(order_id)


async def test_an_outcome_delivered_again_is_acknowledged_every_time_and_applied_once(
        store: SagaStore) -> None:
    app, order_id, request = await _reviewed(store)
    first = await app.supervisor.complete(request, "approved")
    # The workflow's delivery timed out and it delivered again with a new token; then a
    # conflicting outcome for the same hand-off (it cannot happen, and must not count).
    second = await app.supervisor.complete(request, "approved")
    third = await app.supervisor.complete(request, "rejected", {"cause": "late"})
    await app.h.assert_state(S, order_id, S.completed)
    assert [app.supervisor.acknowledged(t) for t in (first, second, third)] == [1, 1, 1]
    assert len(app.h.sent(ChargePayment)) == 1
    history = [h.event for h in await app.h.history(S, order_id)]
    assert history.count("SupervisionCompleted") == 1
    assert app.h.faults == []
    await app.assert_books_balance(order_id)


async def test_the_same_envelope_twice_is_absorbed_by_the_inbox(store: SagaStore) -> None:
    app, order_id, request = await _reviewed(store)
    token = await app.supervisor.complete(request, "approved")
    (delivery,) = [e for e in app.h.consumed if e.message_type.endswith("SupervisionCompleted:v1")]
    await app.h.send_envelope(ORDER_SAGA_QUEUE, delivery)
    assert app.supervisor.acknowledged(token) == 1  # one commit, one acknowledgement
    await app.h.assert_state(S, order_id, S.completed)


async def test_an_outcome_for_an_order_the_saga_does_not_know_is_acknowledged_and_dropped(
        store: SagaStore) -> None:
    app, _order_id, request = await _reviewed(store)
    stray = request.model_copy(update={"correlation_id": "no-such-order",
                                       "handoff_id": handoff_id("OrderSaga", "no-such-order",
                                                                "ManualReview")})
    token = await app.supervisor.complete(stray, "approved")
    assert app.supervisor.acknowledged(token) == 1
    assert app.h.faults == []
    assert await app.h.instance(S, "no-such-order") is None


async def test_the_review_threshold_is_configurable(store: SagaStore) -> None:
    app = await start_order_to_cash(store, settings=OrderSagaSettings(review_threshold=None))
    order_id = await app.submit(BIG)
    await app.h.assert_state(S, order_id, S.completed)
    assert app.supervisor.requests() == []
    app = await start_order_to_cash(
        store, settings=OrderSagaSettings(review_threshold=Decimal("20.00")))
    order_id = await app.submit(order_request(("MUG-1", 3, "8.00")), order_id="small-but-over")
    await app.h.assert_state(S, order_id, S.awaiting_review)


async def test_a_hand_off_too_large_for_step_functions_faults_with_the_reason(
        store: SagaStore) -> None:
    app = await start_order_to_cash(store)
    # The order API caps the flags; a producer that skips it could still send these.
    flags = tuple(f"flag-{i}-" + "x" * 1000 for i in range(300))  # ~300 KB of reasons
    await app.h.publish(OrderSubmitted(
        order_id="huge", customer_id="c-1", currency="EUR", amount=Decimal("25.00"),
        lines=(OrderLine(sku="BOOK-1", quantity=2, unit_price=Decimal("12.50")),),
        risk_flags=flags))
    assert app.supervisor.requests() == []
    assert await app.h.instance(S, "huge") is None
    ((queue, reason),) = app.h.faults
    assert queue == ORDER_SAGA_QUEUE
    assert "over the 262144-byte limit of a Step Functions execution input" in reason
    assert "hand-off " + handoff_id("OrderSaga", "huge", "ManualReview") in reason


async def _handed_off(store: SagaStore) -> tuple[OrderToCash, str, SupervisionRequested]:
    """An order whose shipping failed three times (the default budget)."""
    app = await start_order_to_cash(store)
    app.carrier.down_for(timedelta(hours=3))
    order_id = await app.submit()
    await app.h.advance(timedelta(seconds=30))
    await app.h.advance(timedelta(seconds=60))
    await app.h.assert_state(S, order_id, S.awaiting_shipping_supervision)
    assert [c.attempt for c in app.h.sent(CreateShipment)] == [1, 2, 3]
    (request,) = app.supervisor.requests("SlowShipping")
    return app, order_id, request


async def test_shipping_down_past_the_retry_budget_is_handed_to_slow_shipping(
        store: SagaStore) -> None:
    app, order_id, request = await _handed_off(store)
    assert request.payload["commandType"] == CreateShipment.message_urn
    assert CreateShipment.model_validate(request.payload["command"]) == CreateShipment(
        order_id=order_id, attempt=4, lines=(StockLine(sku="BOOK-1", quantity=2),))
    assert request.payload["failedAttempts"] == 3
    assert request.reason.startswith("shipping failed 3 time(s): FAKEX: down until")
    # The workflow owns the case now: the saga's own deadline and retries are off.
    await app.h.advance(timedelta(hours=2))
    await app.h.assert_state(S, order_id, S.awaiting_shipping_supervision)
    assert app.h.sent(RefundPayment) == [] and len(app.h.sent(CreateShipment)) == 3


async def test_the_shipping_service_answers_the_workflows_task_token(
        store: SagaStore) -> None:
    app, order_id, request = await _handed_off(store)
    command = CreateShipment.model_validate(request.payload["command"])
    # While the carrier is down: SendTaskFailure("ShippingUnavailable"), nothing published.
    await app.h.send(SHIPPING_QUEUE, command, correlation_id=order_id,
                     headers={"taskToken": "attempt-1"})
    (failure,) = app.supervisor.failed("attempt-1")
    assert failure["error"] == "ShippingUnavailable" and "down until" in failure["cause"]
    await app.h.assert_state(S, order_id, S.awaiting_shipping_supervision)
    await app.h.advance(timedelta(hours=3))  # the carrier is back
    await app.h.send(SHIPPING_QUEUE, command, correlation_id=order_id,
                     headers={"taskToken": "attempt-2"})
    (answer,) = [a for a in app.supervisor.answers() if a["taskToken"] == "attempt-2"]
    output = orjson.loads(answer["output"])
    assert answer["action"] == "SendTaskSuccess" and output["trackingId"]
    await app.h.assert_state(S, order_id, S.awaiting_shipping_supervision)
    await app.supervisor.complete(request, "shipped", output)
    await app.h.assert_state(S, order_id, S.completed)
    order = await app.order(order_id)
    assert (order.status, order.tracking_id) == ("Completed", output["trackingId"])
    assert app.h.faults == []
    await app.assert_books_balance(order_id)


async def test_slow_shipping_failing_compensates_and_cancels(store: SagaStore) -> None:
    app, order_id, request = await _handed_off(store)
    await app.supervisor.complete(request, "failed", {
        "error": "ShippingUnavailable", "cause": "carrier down past the deadline"})
    await app.h.assert_state(S, order_id, S.canceled)
    assert len(app.h.sent(RefundPayment)) == len(app.h.sent(ReleaseInventory)) == len(
        app.h.sent(CancelShipment)) == 1
    order = await app.order(order_id)
    assert (order.cancel_code, order.reason) == (
        "shipping_abandoned",
        "shipping abandoned in supervision: carrier down past the deadline")
    await app.assert_books_balance(order_id)


async def test_the_console_reads_the_hand_offs_from_the_instance_data(
        store: SagaStore) -> None:
    app, order_id, request = await _reviewed(store)
    await app.supervisor.start(request)
    record = await store.get_instance(S.model.name, order_id)
    assert record is not None
    (handoff,) = handoffs_of(record.data)
    assert handoff.handoff_id == request.handoff_id and handoff.execution_arn


@pytest.mark.parametrize("outcome", ["shipped", "failed"])
async def test_an_outcome_of_the_other_workflow_is_refused_with_its_reason(
        store: SagaStore, outcome: str) -> None:
    app, order_id, request = await _reviewed(store)
    token = await app.supervisor.complete(request, outcome)  # type: ignore[arg-type]
    await app.h.assert_state(S, order_id, S.awaiting_review)
    assert app.supervisor.acknowledged(token) == 0  # not taken: the workflow sees it
    ((queue, reason),) = app.h.faults
    assert queue == ORDER_SAGA_QUEUE
    assert f"outcome '{outcome}' does not belong to workflow ManualReview" in reason
    # The right outcome still applies afterwards.
    await app.supervisor.complete(request, "approved")
    await app.h.assert_state(S, order_id, S.completed)


class _RecordingStepFunctions:
    def __init__(self) -> None:
        self.heartbeats: list[str] = []

    async def send_task_success(self, **kwargs: object) -> dict[str, object]:
        return {}

    async def send_task_failure(self, **kwargs: object) -> dict[str, object]:
        return {}

    async def send_task_heartbeat(self, **kwargs: object) -> dict[str, object]:
        self.heartbeats.append(str(kwargs["taskToken"]))
        return {}


async def test_a_slow_carrier_call_for_the_workflow_sends_heartbeats(
        sqlite_store: SagaStore) -> None:
    import asyncio

    from bridge import TaskHeartbeats
    from core_saga.testing import SagaTestHarness
    from examples.order_to_cash import create_tables
    from examples.order_to_cash.shipping import CreateShipmentConsumer, FakeCarrier

    class SlowCarrier(FakeCarrier):
        async def create_label(self, **kwargs: object) -> object:  # type: ignore[override]
            await asyncio.sleep(0.5)
            return await super().create_label(**kwargs)  # type: ignore[arg-type]

    client = _RecordingStepFunctions()
    async with SagaTestHarness(store=sqlite_store) as h:
        await create_tables(h.store)
        supervisor = SupervisorDouble(h)
        h.add_consumer(CreateShipmentConsumer(SlowCarrier(), TaskHeartbeats(
            client, every_seconds=0.1)), queue=SHIPPING_QUEUE)
        command = CreateShipment(order_id="o-9", attempt=4,
                                 lines=(StockLine(sku="BOOK-1", quantity=1),))
        await h.send(SHIPPING_QUEUE, command, correlation_id="o-9",
                     headers={"taskToken": "slow-task"})
        assert len(client.heartbeats) >= 3 and set(client.heartbeats) == {"slow-task"}
        (answer,) = supervisor.answers()
        assert answer["action"] == "SendTaskSuccess"
        # without a token (the saga's own command) no heartbeat is sent
        client.heartbeats.clear()
        await h.send(SHIPPING_QUEUE, command.model_copy(update={"order_id": "o-10"}),
                     correlation_id="o-10")
        assert client.heartbeats == []
