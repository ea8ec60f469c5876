"""The hand-off points (issue 4 §3) through the local supervision double: the test
plays the supervisor by reading the request on the ``supervision`` queue and
publishing the outcome."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import orjson

from core_saga import decode_envelope
from core_saga.persistence import SagaStore
from examples.order_to_cash import LocalSupervisionDouble, OrderSaga, OrderSagaSettings
from examples.order_to_cash.messages import (
    CancelShipment,
    ChargePayment,
    CreateShipment,
    RefundPayment,
    ReleaseInventory,
    RequestReview,
    RequestShippingSupervision,
    ReviewApproved,
    ReviewRejected,
    ReviewTimedOut,
    ShippingAbandoned,
    ShippingRecovered,
    StockLine,
)
from examples.order_to_cash.queues import SHIPPING_QUEUE, SUPERVISION_QUEUE
from examples.order_to_cash.supervision import SupervisionContext

from .support import OrderToCash, order_request, start_order_to_cash

S = OrderSaga
BIG = order_request(("LAMP-1", 1, "1500.00"))


def supervision_requests(app: OrderToCash) -> list[object]:
    """What waits on the supervision queue, decoded."""
    return [decode_envelope(body).message for body in app.h.waiting(SUPERVISION_QUEUE)]


def test_the_default_supervision_is_the_double_and_says_what_it_stands_in_for() -> None:
    assert isinstance(OrderSagaSettings().supervision, LocalSupervisionDouble)
    assert "stands in for the Step Functions bridge" in (LocalSupervisionDouble.__doc__ or "")


async def test_an_order_over_the_threshold_is_reviewed_before_it_is_charged(
        store: SagaStore) -> None:
    app = await start_order_to_cash(store)
    order_id = await app.submit(BIG)
    await app.h.assert_state(S, order_id, S.awaiting_review)
    assert app.h.sent(ChargePayment) == []
    assert supervision_requests(app) == [RequestReview(
        order_id=order_id, customer_id="c-1", amount=Decimal("1500.00"), currency="EUR",
        reasons=("amount 1500.00 EUR is over the review threshold 1000.00",))]
    await app.h.publish(ReviewApproved(order_id=order_id, reviewer="ann"))
    await app.h.assert_state(S, order_id, S.completed)
    await app.h.publish(ReviewRejected(order_id=order_id, reason="second thoughts"))
    await app.h.assert_state(S, order_id, S.completed)  # the first decision stands
    assert app.h.faults == []
    await app.assert_books_balance(order_id)


async def test_a_risk_flag_sends_a_small_order_to_review_and_a_rejection_cancels_it(
        store: SagaStore) -> None:
    app = await start_order_to_cash(store)
    order_id = await app.submit(order_request(risk_flags=("address_mismatch",)))
    await app.h.assert_state(S, order_id, S.awaiting_review)
    request = supervision_requests(app)[0]
    assert isinstance(request, RequestReview)
    assert request.reasons == ("risk flag: address_mismatch",)
    await app.h.publish(ReviewRejected(order_id=order_id, reason="stolen card"))
    await app.h.assert_state(S, order_id, S.canceled)
    order = await app.order(order_id)
    assert (order.cancel_code, order.reason) == ("review_rejected",
                                                 "rejected in review: stolen card")
    assert app.h.sent(ChargePayment) == [] and app.gateway.calls == 0
    await app.assert_books_balance(order_id)


async def test_a_review_nobody_answers_in_time_cancels_the_order(store: SagaStore) -> None:
    app = await start_order_to_cash(store)
    order_id = await app.submit(BIG)
    await app.h.publish(ReviewTimedOut(order_id=order_id))
    await app.h.assert_state(S, order_id, S.canceled)
    order = await app.order(order_id)
    assert (order.cancel_code, order.reason) == ("review_timed_out",
                                                 "nobody reviewed the order in time")
    await app.assert_books_balance(order_id)


async def test_the_review_threshold_is_configurable(store: SagaStore) -> None:
    app = await start_order_to_cash(store, settings=OrderSagaSettings(review_threshold=None))
    order_id = await app.submit(BIG)
    await app.h.assert_state(S, order_id, S.completed)
    app = await start_order_to_cash(
        store, settings=OrderSagaSettings(review_threshold=Decimal("20.00")))
    order_id = await app.submit(order_request(("MUG-1", 3, "8.00")), order_id="small-but-over")
    await app.h.assert_state(S, order_id, S.awaiting_review)


async def _handed_off(store: SagaStore) -> tuple[OrderToCash, str]:
    """An order whose shipping failed three times (the default budget)."""
    app = await start_order_to_cash(store)
    app.carrier.down_for(timedelta(hours=3))
    order_id = await app.submit()
    await app.h.advance(timedelta(seconds=30))
    await app.h.advance(timedelta(seconds=60))
    await app.h.assert_state(S, order_id, S.awaiting_shipping_supervision)
    assert [c.attempt for c in app.h.sent(CreateShipment)] == [1, 2, 3]
    return app, order_id


async def test_shipping_down_past_the_retry_budget_is_handed_to_supervision(
        store: SagaStore) -> None:
    app, order_id = await _handed_off(store)
    (request,) = supervision_requests(app)
    assert isinstance(request, RequestShippingSupervision)
    assert (request.failed_attempts, request.command) == (3, CreateShipment(
        order_id=order_id, attempt=4, lines=(StockLine(sku="BOOK-1", quantity=2),)))
    assert request.last_error.startswith("FAKEX: down until")
    # Supervision owns the case now: the saga's own deadline does not fire.
    await app.h.advance(timedelta(hours=2))
    await app.h.assert_state(S, order_id, S.awaiting_shipping_supervision)
    assert app.h.sent(RefundPayment) == [] and len(app.h.sent(CreateShipment)) == 3


async def test_supervision_that_gets_the_order_shipped_completes_it(store: SagaStore) -> None:
    app, order_id = await _handed_off(store)
    (request,) = supervision_requests(app)
    assert isinstance(request, RequestShippingSupervision)
    await app.h.advance(timedelta(hours=3))  # the carrier is back
    # The supervisor retries the command it was given; the shipping service answers.
    await app.h.send(SHIPPING_QUEUE, request.command, correlation_id=order_id)
    await app.h.assert_state(S, order_id, S.completed)
    await app.h.publish(ShippingRecovered(order_id=order_id,
                                          tracking_id=(await app.order(order_id)).tracking_id
                                          or ""))
    await app.h.assert_state(S, order_id, S.completed)
    assert app.h.faults == []
    await app.assert_books_balance(order_id)


async def test_shipping_recovered_reported_by_supervision_completes_the_order(
        store: SagaStore) -> None:
    app, order_id = await _handed_off(store)
    await app.h.publish(ShippingRecovered(order_id=order_id, tracking_id="SUP-42"))
    await app.h.assert_state(S, order_id, S.completed)
    order = await app.order(order_id)
    assert (order.status, order.tracking_id) == ("Completed", "SUP-42")


async def test_shipping_abandoned_by_supervision_compensates_and_cancels(
        store: SagaStore) -> None:
    app, order_id = await _handed_off(store)
    await app.h.publish(ShippingAbandoned(order_id=order_id, reason="carrier out of business"))
    await app.h.assert_state(S, order_id, S.canceled)
    assert len(app.h.sent(RefundPayment)) == len(app.h.sent(ReleaseInventory)) == len(
        app.h.sent(CancelShipment)) == 1
    order = await app.order(order_id)
    assert (order.cancel_code, order.reason) == (
        "shipping_abandoned", "shipping abandoned in supervision: carrier out of business")
    await app.assert_books_balance(order_id)


class RecordingSupervision:
    """Another implementation of the seam (as the bridge will be)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def request_review(self, ctx: SupervisionContext) -> None:
        self.calls.append(("review", ctx.saga.correlation_id))
        ctx.publish(RequestReview(order_id=ctx.saga.correlation_id,
                                  customer_id=ctx.saga.customer_id, amount=ctx.saga.amount,
                                  currency=ctx.saga.currency,
                                  reasons=tuple(ctx.saga.review_reasons)))

    def request_shipping_supervision(self, ctx: SupervisionContext) -> None:
        self.calls.append(("shipping", ctx.saga.correlation_id))


async def test_another_supervision_replaces_the_double_without_changing_the_states(
        store: SagaStore) -> None:
    supervision = RecordingSupervision()
    app = await start_order_to_cash(store, settings=OrderSagaSettings(
        supervision=supervision, shipping_retry_budget=1))
    reviewed = await app.submit(BIG)
    await app.h.assert_state(S, reviewed, S.awaiting_review)
    app.carrier.down_for(timedelta(hours=1))
    shipped = await app.submit()
    await app.h.assert_state(S, shipped, S.awaiting_shipping_supervision)
    assert supervision.calls == [("review", reviewed), ("shipping", shipped)]
    assert app.h.waiting(SUPERVISION_QUEUE) == []
    assert [m.order_id for m in app.h.published(RequestReview)] == [reviewed]
    body = app.h.envelopes(RequestReview)[0].encode()
    assert orjson.loads(body)["messageType"] == "urn:message:order_to_cash:RequestReview:v1"
