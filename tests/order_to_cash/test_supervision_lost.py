"""No lost hand-off, in process on the harness's virtual clock: the deadline for
``SupervisionStarted`` re-publishes the same hand-off a bounded number of times, then
the order gets its ``supervision_lost`` outcome; Step Functions' report of a failed,
timed-out or aborted execution reaches the saga once. The same paths run on the real
workflows in tests/order_to_cash/test_supervision_lost_e2e.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bridge import HandOffConfig, republish_handoff
from bridge.contracts import SupervisionLost
from core_saga import BehaviorContext, Envelope
from core_saga.persistence import SagaStore
from examples.order_to_cash import OrderSaga, OrderSagaSettings
from examples.order_to_cash.messages import (
    CancelShipment,
    ChargePayment,
    RefundPayment,
    ReleaseInventory,
)
from examples.order_to_cash.settings import LOCAL_BUS, LOCAL_REPLY_TO

from .support import OrderToCash, order_request, start_order_to_cash

S = OrderSaga
BIG = order_request(("LAMP-1", 1, "1500.00"))
DEADLINE = timedelta(minutes=5)  # the shipped default


async def _reviewed(store: SagaStore, settings: OrderSagaSettings | None = None
                    ) -> tuple[OrderToCash, str]:
    app = await start_order_to_cash(store, settings=settings)
    order_id = await app.submit(BIG)
    await app.h.assert_state(S, order_id, S.awaiting_review)
    return app, order_id


async def test_the_default_deadline_re_publishes_the_same_hand_off_three_times_then_cancels(
        store: SagaStore) -> None:
    app, order_id = await _reviewed(store)
    (first,) = app.supervisor.requests("ManualReview")
    await app.h.advance(DEADLINE - timedelta(seconds=1))
    assert len(app.supervisor.requests()) == 1  # not yet
    for publishes in (2, 3, 4):
        await app.h.advance(timedelta(seconds=1) if publishes == 2 else DEADLINE)
        requests = app.supervisor.requests()
        assert len(requests) == publishes
        assert requests[-1] == first  # the same hand-off: same id, same detail
        await app.h.assert_state(S, order_id, S.awaiting_review)
    (record,) = (await app.saga(order_id)).handoffs
    assert (record.publishes, record.pending) == (4, True)
    await app.h.advance(DEADLINE)
    await app.h.assert_state(S, order_id, S.canceled)
    assert len(app.supervisor.requests()) == 4  # given up, not published again
    order = await app.order(order_id)
    assert order.cancel_code == "supervision_lost"
    assert order.reason is not None and "ManualReview not_started" in order.reason
    assert "4 publish(es)" in order.reason
    (record,) = (await app.saga(order_id)).handoffs
    assert (record.lost, record.pending) == ("not_started", False)
    assert app.h.sent(ChargePayment) == []
    await app.h.advance(timedelta(hours=1))  # nothing is armed any more
    assert len(app.supervisor.requests()) == 4 and len(app.h.sent(SupervisionLost)) == 1
    await app.assert_books_balance(order_id)


async def test_a_start_after_a_re_publish_disarms_the_deadline(store: SagaStore) -> None:
    app, order_id = await _reviewed(store)
    await app.h.advance(DEADLINE)
    request, again = app.supervisor.requests()
    assert again == request
    await app.supervisor.start(request)
    await app.h.advance(timedelta(hours=2))
    assert len(app.supervisor.requests()) == 2
    await app.h.assert_state(S, order_id, S.awaiting_review)
    await app.supervisor.complete(request, "approved", {"reviewer": "ann"})
    await app.h.assert_state(S, order_id, S.completed)
    await app.assert_books_balance(order_id)


async def test_the_deadline_and_the_re_publishes_are_settings(store: SagaStore) -> None:
    settings = OrderSagaSettings(supervision=HandOffConfig(
        bus=LOCAL_BUS, reply_to=LOCAL_REPLY_TO, started_deadline=timedelta(seconds=30),
        republishes=0))
    app, order_id = await _reviewed(store, settings)
    await app.h.advance(timedelta(seconds=30))
    await app.h.assert_state(S, order_id, S.canceled)
    assert len(app.supervisor.requests()) == 1
    assert (await app.order(order_id)).cancel_code == "supervision_lost"


def test_bad_deadline_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="started_deadline must be positive"):
        HandOffConfig(bus=LOCAL_BUS, reply_to=LOCAL_REPLY_TO, started_deadline=timedelta(0))
    with pytest.raises(ValueError, match="republishes must be an integer >= 0"):
        HandOffConfig(bus=LOCAL_BUS, reply_to=LOCAL_REPLY_TO, republishes=-1)


async def _in_shipping_supervision(store: SagaStore) -> tuple[OrderToCash, str]:
    app = await start_order_to_cash(store, settings=OrderSagaSettings(shipping_retry_budget=1))
    app.carrier.down_for(timedelta(hours=3))
    order_id = await app.submit()
    await app.h.assert_state(S, order_id, S.awaiting_shipping_supervision)
    return app, order_id


async def test_an_aborted_execution_compensates_once_and_cancels_naming_it(
        store: SagaStore) -> None:
    app, order_id = await _in_shipping_supervision(store)
    (request,) = app.supervisor.requests("SlowShipping")
    await app.supervisor.start(request)
    event_id = await app.supervisor.end_execution(request, "ABORTED",
                                                  cause="stopped by an operator")
    await app.h.assert_state(S, order_id, S.canceled)
    order = await app.order(order_id)
    assert order.cancel_code == "supervision_lost"
    assert order.reason == ("supervision lost: SlowShipping execution_aborted: the "
                            "SlowShipping execution ended ABORTED (stopped by an operator)")
    for command in (RefundPayment, ReleaseInventory, CancelShipment):
        assert len(app.h.sent(command)) == 1, command
    # The same event again (EventBridge retries) and a new one for the same execution.
    await app.supervisor.end_execution(request, "ABORTED", event_id=event_id)
    await app.supervisor.end_execution(request, "FAILED", error="States.Runtime")
    for command in (RefundPayment, ReleaseInventory, CancelShipment):
        assert len(app.h.sent(command)) == 1, command
    (record,) = (await app.saga(order_id)).handoffs
    assert (record.lost, record.execution_status) == ("execution_aborted", "ABORTED")
    await app.assert_books_balance(order_id)


@pytest.mark.parametrize(("status", "cause"), [("FAILED", "execution_failed"),
                                               ("TIMED_OUT", "execution_timed_out")])
async def test_a_failed_or_timed_out_review_execution_cancels(
        store: SagaStore, status: str, cause: str) -> None:
    app, order_id = await _reviewed(store)
    (request,) = app.supervisor.requests()
    await app.supervisor.start(request)
    await app.supervisor.end_execution(request, status, error="States.Runtime",
                                       cause="bad path")
    await app.h.assert_state(S, order_id, S.canceled)
    order = await app.order(order_id)
    assert order.cancel_code == "supervision_lost"
    assert order.reason is not None and cause in order.reason and status in order.reason
    assert app.h.sent(ChargePayment) == []


async def test_a_status_event_after_the_outcome_changes_nothing(store: SagaStore) -> None:
    app, order_id = await _reviewed(store)
    (request,) = app.supervisor.requests()
    await app.supervisor.start(request)
    await app.supervisor.complete(request, "approved")
    await app.h.assert_state(S, order_id, S.completed)
    await app.supervisor.end_execution(request, "FAILED", error="SupervisionNotDelivered")
    await app.h.assert_state(S, order_id, S.completed)
    (record,) = (await app.saga(order_id)).handoffs
    assert (record.outcome, record.lost) == ("approved", None)
    assert app.h.sent(SupervisionLost) == []


async def test_the_end_of_another_execution_of_the_same_hand_off_changes_nothing(
        store: SagaStore) -> None:
    app, order_id = await _reviewed(store)
    (request,) = app.supervisor.requests()
    await app.supervisor.start(request)
    other = app.supervisor.execution_arn(request) + "-duplicate"
    await app.supervisor.end_execution(request, "FAILED", execution_arn=other)
    await app.h.assert_state(S, order_id, S.awaiting_review)
    assert (await app.saga(order_id)).handoffs[0].pending


async def test_republish_refuses_an_unknown_or_finished_hand_off(store: SagaStore) -> None:
    app, order_id = await _reviewed(store)
    (request,) = app.supervisor.requests()
    await app.supervisor.start(request)
    await app.supervisor.complete(request, "rejected", {"cause": "no"})
    saga = await app.saga(order_id)
    envelope = Envelope(message=SupervisionLost(
        handoff_id=request.handoff_id, correlation_id=order_id, workflow="ManualReview",
        cause="not_started", detail="test"))
    ctx: BehaviorContext[Any, Any] = BehaviorContext(
        envelope, saga=saga, machine=OrderSaga(), event_name="test",
        endpoint="order-saga", clock=app.h.clock, routes=lambda urn: ())
    with pytest.raises(ValueError, match="made no hand-off nope"):
        republish_handoff(ctx, "nope")
    with pytest.raises(ValueError, match="is over \\(rejected\\)"):
        republish_handoff(ctx, request.handoff_id)
    assert ctx.outgoing == []
