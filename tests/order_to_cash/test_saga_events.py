"""The saga alone, fed events by hand: duplicates, late and out-of-order events, and
the timers. The services are not hosted; their commands wait on their queues."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest

from core_saga import Message, Topology
from core_saga.persistence import SagaStore
from core_saga.testing import SagaTestHarness, assert_saga_valid
from examples.order_to_cash import OrderSaga, OrderSagaSettings
from examples.order_to_cash.messages import (
    CancelShipment,
    ChargePayment,
    CreateShipment,
    InventoryReleased,
    InventoryReserved,
    OrderCanceled,
    OrderCompleted,
    OrderLine,
    OrderSubmitted,
    PaymentCharged,
    PaymentRefunded,
    RefundPayment,
    ReleaseInventory,
    ReserveInventory,
    ShipmentCanceled,
    ShipmentCreated,
    ShipmentFailed,
)

S = OrderSaga
ID = "o-1"


def submitted(amount: str = "25.00", **extra: object) -> OrderSubmitted:
    return OrderSubmitted.model_validate({
        "order_id": ID, "customer_id": "c-1", "currency": "EUR", "amount": amount,
        "lines": [OrderLine(sku="BOOK-1", quantity=2,
                            unit_price=Decimal(amount) / 2)], **extra})


def charged() -> PaymentCharged:
    return PaymentCharged(order_id=ID, amount=Decimal("25.00"), currency="EUR",
                          payment_reference="ch_1")


async def saga_only(store: SagaStore, settings: OrderSagaSettings | None = None
                    ) -> SagaTestHarness:
    h = SagaTestHarness(store=store)
    h.add_saga(OrderSaga(settings), queue="order-saga")
    return h


async def to_shipping_pending(h: SagaTestHarness) -> None:
    await h.publish(submitted())
    await h.publish(charged())
    await h.publish(InventoryReserved(order_id=ID))
    await h.assert_state(S, ID, S.shipping_pending)


async def to_compensating(h: SagaTestHarness) -> None:
    await to_shipping_pending(h)
    await h.advance(timedelta(hours=1))  # nobody answered: the deadline fires
    await h.assert_state(S, ID, S.compensating)


def test_the_saga_passes_its_static_checks() -> None:
    assert_saga_valid(OrderSaga)


def test_the_happy_path_of_the_issue_is_the_spine_of_the_graph() -> None:
    edges = {(t.source, t.event, t.target) for t in OrderSaga.model.transitions}
    assert {("Initial", "OrderSubmitted", "PaymentPending"),
            ("PaymentPending", "PaymentCharged", "InventoryPending"),
            ("InventoryPending", "InventoryReserved", "ShippingPending"),
            ("ShippingPending", "ShipmentCreated", "Completed")} <= edges
    assert OrderSaga.model.terminal_states == {"Completed", "Canceled", "Final"}


async def test_a_redelivered_event_with_the_same_message_id_is_applied_once(
        store: SagaStore) -> None:
    h = await saga_only(store)
    await h.publish(submitted())
    envelope = await h.publish(charged())
    await h.send_envelope("order-saga", envelope)
    await h.send_envelope("order-saga", envelope)
    await h.assert_state(S, ID, S.inventory_pending)
    assert len(h.sent(ReserveInventory)) == 1
    assert h.faults == []


async def test_a_resubmitted_order_changes_nothing_in_any_later_state(store: SagaStore) -> None:
    h = await saga_only(store)
    await h.publish(submitted())
    await h.publish(submitted())
    await h.publish(charged())
    await h.publish(submitted())
    await h.publish(InventoryReserved(order_id=ID))
    await h.publish(submitted())
    await h.publish(ShipmentCreated(order_id=ID, tracking_id="T-1", carrier="X"))
    await h.publish(submitted())
    await h.assert_state(S, ID, S.completed)
    assert len(h.sent(ChargePayment)) == 1 and len(h.published(OrderCompleted)) == 1
    assert h.faults == []


async def test_repeated_success_events_are_ignored_once_the_saga_moved_on(
        store: SagaStore) -> None:
    h = await saga_only(store)
    await h.publish(submitted())
    await h.publish(charged())
    await h.publish(charged())  # a new message id: the inbox cannot tell
    await h.publish(InventoryReserved(order_id=ID))
    await h.publish(charged())
    await h.publish(InventoryReserved(order_id=ID))
    await h.assert_state(S, ID, S.shipping_pending)
    assert len(h.sent(ReserveInventory)) == 1 and len(h.sent(CreateShipment)) == 1
    assert h.faults == []


async def test_a_reply_to_an_older_shipment_attempt_is_ignored(store: SagaStore) -> None:
    h = await saga_only(store, OrderSagaSettings(shipping_retry_budget=None))
    await to_shipping_pending(h)
    await h.publish(ShipmentFailed(order_id=ID, attempt=1, reason="down"))
    await h.advance(timedelta(seconds=30))
    assert [c.attempt for c in h.sent(CreateShipment)] == [1, 2]
    await h.publish(ShipmentFailed(order_id=ID, attempt=1, reason="down (late copy)"))
    saga = await h.instance(S, ID)
    assert saga is not None
    assert (saga.shipment_attempt, saga.shipment_retry_token) == (2, None)  # no new timer
    assert saga.last_shipping_error == "down"
    await h.publish(ShipmentFailed(order_id=ID, attempt=2, reason="still down"))
    await h.advance(timedelta(seconds=59))
    assert len(h.sent(CreateShipment)) == 2
    await h.advance(timedelta(seconds=1))  # the second wait is twice the first
    assert [c.attempt for c in h.sent(CreateShipment)] == [1, 2, 3]
    assert h.faults == []


@pytest.mark.parametrize("order", list(itertools.permutations(
    ["refunded", "released", "shipment_canceled"])), ids="-then-".join)
async def test_compensation_replies_in_any_order_cancel_once_all_are_in(
        store: SagaStore, order: tuple[str, ...]) -> None:
    h = await saga_only(store)
    await to_compensating(h)
    assert len(h.sent(RefundPayment)) == len(h.sent(ReleaseInventory)) == len(
        h.sent(CancelShipment)) == 1
    replies: dict[str, Message] = {
        "refunded": PaymentRefunded(order_id=ID, refunded=True, amount=Decimal("25.00"),
                                    currency="EUR", note="refunded 25.00 EUR"),
        "released": InventoryReleased(order_id=ID, released=True, note="released 1 line(s)"),
        "shipment_canceled": ShipmentCanceled(order_id=ID, voided=False, note="no shipment"),
    }
    for name in order[:-1]:
        await h.publish(replies[name])
        await h.publish(replies[name])  # a repeat does not count twice
        await h.assert_state(S, ID, S.compensating)
    await h.publish(replies[order[-1]])
    await h.assert_state(S, ID, S.canceled)
    assert [e.code for e in h.published(OrderCanceled)] == ["shipping_deadline"]
    for reply in replies.values():  # late copies after the end
        await h.publish(reply)
    await h.assert_state(S, ID, S.canceled)
    assert len(h.published(OrderCanceled)) == 1 and h.faults == []


async def test_late_shipping_news_is_ignored_while_compensating_and_after(
        store: SagaStore) -> None:
    h = await saga_only(store)
    await to_compensating(h)
    await h.publish(ShipmentCreated(order_id=ID, tracking_id="late", carrier="X"))
    await h.publish(ShipmentFailed(order_id=ID, attempt=1, reason="late"))
    await h.assert_state(S, ID, S.compensating)
    await h.publish(PaymentRefunded(order_id=ID, refunded=True, amount=Decimal(25),
                                    currency="EUR", note="ok"))
    await h.publish(InventoryReleased(order_id=ID, released=True, note="ok"))
    await h.publish(ShipmentCanceled(order_id=ID, voided=True, note="voided label late"))
    await h.publish(ShipmentCreated(order_id=ID, tracking_id="later", carrier="X"))
    await h.assert_state(S, ID, S.canceled)
    saga = await h.instance(S, ID)
    assert saga is not None and saga.tracking_id is None
    assert h.published(OrderCompleted) == [] and h.faults == []


async def test_an_event_that_cannot_happen_in_a_state_faults_instead_of_vanishing(
        store: SagaStore) -> None:
    h = await saga_only(store)
    await h.publish(submitted())
    await h.publish(ShipmentCreated(order_id=ID, tracking_id="T", carrier="X"))
    await h.assert_state(S, ID, S.payment_pending)
    assert len(h.faults) == 1 and "UnhandledEventError" in h.faults[0][1]
    assert "PaymentPending" in h.faults[0][1]


async def test_an_event_for_an_unknown_order_faults(store: SagaStore) -> None:
    h = await saga_only(store)
    await h.publish(charged())
    assert len(h.faults) == 1 and "SagaNotFoundError" in h.faults[0][1]


async def test_the_shipping_deadline_timer_is_stale_once_shipped(store: SagaStore) -> None:
    h = await saga_only(store)
    await to_shipping_pending(h)
    await h.publish(ShipmentCreated(order_id=ID, tracking_id="T-1", carrier="X"))
    await h.advance(timedelta(hours=2))
    await h.assert_state(S, ID, S.completed)
    assert h.sent(RefundPayment) == [] and await store.pending_outbox() == []


def test_settings_refuse_bad_values_by_name() -> None:
    with pytest.raises(ValueError, match="shipping_deadline"):
        OrderSagaSettings(shipping_deadline=timedelta(0))
    with pytest.raises(ValueError, match="shipping_retry_budget"):
        OrderSagaSettings(shipping_retry_budget=0)
    with pytest.raises(ValueError, match="shipping_retry_max"):
        OrderSagaSettings(shipping_retry_initial=timedelta(minutes=5),
                          shipping_retry_max=timedelta(minutes=1))
    with pytest.raises(ValueError, match="review_threshold"):
        OrderSagaSettings(review_threshold=Decimal(-1))


def test_the_backoff_doubles_and_is_capped() -> None:
    settings = OrderSagaSettings()
    assert [settings.retry_delay(n).total_seconds() for n in range(1, 8)] == [
        30, 60, 120, 240, 480, 600, 600]
    assert settings.retry_delay(10_000) == timedelta(minutes=10)


def test_the_saga_takes_its_settings_by_keyword_and_defaults_them() -> None:
    assert OrderSaga().settings == OrderSagaSettings()
    custom = OrderSagaSettings(shipping_deadline=timedelta(hours=2))
    assert OrderSaga(settings=custom).settings is custom


def test_the_saga_subscribes_to_what_the_services_publish() -> None:
    from examples.order_to_cash import build_topology

    topology: Topology = build_topology()
    assert topology.routes(PaymentCharged.message_urn) == ("order-saga",)
    assert topology.routes(OrderCanceled.message_urn) == ("orders",)
