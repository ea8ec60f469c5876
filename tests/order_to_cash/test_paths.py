"""Every path of issue 4 §2, end to end through the order service, the saga and the
payment, inventory and shipping services, on every store (memory, SQLite, PostgreSQL).
Each test ends with the ledger checks of "How we will check it"."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from core_saga.persistence import SagaStore
from examples.order_to_cash import OrderSaga, OrderSagaSettings, host_services
from examples.order_to_cash.inventory import UNAVAILABLE, reservation_of, stock_levels
from examples.order_to_cash.messages import (
    CancelShipment,
    ChargePayment,
    CreateShipment,
    OrderCanceled,
    OrderCompleted,
    RefundPayment,
    ReleaseInventory,
    ReserveInventory,
)
from examples.order_to_cash.shipping import CANCELED, VOIDED

from .support import OrderToCash, order_request, shipment_of, start_order_to_cash

S = OrderSaga
NO_SUPERVISION = OrderSagaSettings(shipping_retry_budget=None)


async def history(app: OrderToCash, order_id: str) -> list[tuple[str, str, str]]:
    return [(r.from_state, r.event, r.to_state) for r in await app.h.history(S, order_id)]


async def test_happy_path_reaches_completed_and_the_books_balance(store: SagaStore) -> None:
    app = await start_order_to_cash(store)
    order_id = await app.submit(order_request(("BOOK-1", 2, "12.50"), ("MUG-1", 1, "8.00")))
    await app.h.assert_state(S, order_id, S.completed)
    assert await history(app, order_id) == [
        ("Initial", "OrderSubmitted", "PaymentPending"),
        ("PaymentPending", "PaymentCharged", "InventoryPending"),
        ("InventoryPending", "InventoryReserved", "ShippingPending"),
        ("ShippingPending", "ShipmentCreated", "Completed"),
    ]
    order = await app.order(order_id)
    assert (order.status, order.amount) == ("Completed", Decimal("33.00"))
    assert app.h.published(OrderCompleted) == [
        OrderCompleted(order_id=order_id, tracking_id=order.tracking_id or "")]
    assert await stock_levels(store, ["BOOK-1", "MUG-1"]) == {"BOOK-1": 8, "MUG-1": 9}
    # No timer is left behind: two hours later nothing moves.
    await app.h.advance(timedelta(hours=2))
    await app.h.assert_state(S, order_id, S.completed)
    assert await store.pending_outbox() == []
    await app.assert_books_balance(order_id)


async def test_payment_declined_cancels_and_never_asks_inventory_or_shipping(
        store: SagaStore) -> None:
    app = await start_order_to_cash(store)
    app.gateway.decline("o-declined")
    order_id = await app.submit(order_id="o-declined")
    await app.h.assert_state(S, order_id, S.canceled)
    assert app.h.sent(ReserveInventory) == [] and app.h.sent(CreateShipment) == []
    assert app.h.sent(RefundPayment) == []  # nothing was charged, nothing to undo
    order = await app.order(order_id)
    assert (order.status, order.cancel_code, order.reason) == (
        "Canceled", "payment_declined", "payment declined: insufficient_funds")
    assert await reservation_of(store, order_id) is None
    assert await shipment_of(store, order_id) is None
    await app.assert_books_balance(order_id)


async def test_inventory_missing_after_payment_refunds_once_and_cancels(
        store: SagaStore) -> None:
    app = await start_order_to_cash(store)
    order_id = await app.submit(order_request(("BOOK-1", 1, "12.50"), ("LAMP-1", 3, "40.00")))
    await app.h.assert_state(S, order_id, S.canceled)
    assert await history(app, order_id) == [
        ("Initial", "OrderSubmitted", "PaymentPending"),
        ("PaymentPending", "PaymentCharged", "InventoryPending"),
        ("InventoryPending", "InventoryUnavailable", "CompensatingPayment"),
        ("CompensatingPayment", "PaymentRefunded", "Canceled"),
    ]
    assert app.h.sent(RefundPayment) == [RefundPayment(
        order_id=order_id, amount=Decimal("132.50"), currency="EUR",
        reason="inventory unavailable: not enough stock of LAMP-1")]
    assert app.h.sent(CreateShipment) == [] and app.h.sent(ReleaseInventory) == []
    order = await app.order(order_id)
    assert (order.cancel_code, order.reason) == (
        "inventory_unavailable", "inventory unavailable: not enough stock of LAMP-1")
    saga = await app.saga(order_id)
    assert saga.compensation_notes == ["refund: refunded 132.50 EUR"]
    reservation = await reservation_of(store, order_id)
    assert reservation is not None and reservation.status == UNAVAILABLE
    await app.assert_books_balance(order_id)  # BOOK-1 was not kept either


async def test_shipping_down_retries_with_backoff_then_compensates_at_the_deadline(
        store: SagaStore) -> None:
    app = await start_order_to_cash(store, settings=NO_SUPERVISION)
    app.carrier.down_for(timedelta(hours=3))
    start = app.h.clock.now()
    order_id = await app.submit()
    await app.h.assert_state(S, order_id, S.shipping_pending)
    for _ in range(59):
        await app.h.advance(timedelta(minutes=1))
    await app.h.assert_state(S, order_id, S.shipping_pending)
    await app.h.advance(timedelta(minutes=1))  # one hour after the first attempt
    await app.h.assert_state(S, order_id, S.canceled)
    attempts = [(c.attempt, e.sent_time - start)
                for c, e in zip(app.h.sent(CreateShipment), app.h.envelopes(CreateShipment),
                                strict=True)]
    # 30 s doubling, capped at 10 min; the times are rounded up to the minute the test
    # advances by.
    assert [a for a, _ in attempts] == list(range(1, 11))
    assert [t.total_seconds() // 60 for _, t in attempts] == [
        0, 1, 2, 4, 8, 16, 26, 36, 46, 56]
    assert len(app.h.sent(RefundPayment)) == 1
    assert len(app.h.sent(ReleaseInventory)) == 1
    assert len(app.h.sent(CancelShipment)) == 1
    order = await app.order(order_id)
    assert order.cancel_code == "shipping_deadline"
    assert order.reason is not None and order.reason.startswith(
        "shipping failed for 1:00:00 after 10 attempt(s): FAKEX: down until")
    shipment = await shipment_of(store, order_id)
    assert shipment is not None and shipment.status == CANCELED  # none will ever be issued
    assert app.h.published(OrderCanceled)[0].code == "shipping_deadline"
    await app.assert_books_balance(order_id)


async def test_the_shipping_deadline_is_configurable(store: SagaStore) -> None:
    settings = OrderSagaSettings(shipping_deadline=timedelta(minutes=5),
                                 shipping_retry_budget=None)
    app = await start_order_to_cash(store, settings=settings)
    app.carrier.down_for(timedelta(hours=1))
    order_id = await app.submit()
    await app.h.advance(timedelta(minutes=4, seconds=59))
    await app.h.assert_state(S, order_id, S.shipping_pending)
    await app.h.advance(timedelta(seconds=1))
    await app.h.assert_state(S, order_id, S.canceled)
    await app.assert_books_balance(order_id)


async def test_shipping_that_recovers_before_the_deadline_completes(store: SagaStore) -> None:
    app = await start_order_to_cash(store, settings=NO_SUPERVISION)
    app.carrier.down_for(timedelta(minutes=3))
    order_id = await app.submit()
    for _ in range(10):
        await app.h.advance(timedelta(minutes=1))
    await app.h.assert_state(S, order_id, S.completed)
    # Tries at 0, 1, 2 and 4 min (30 s, 1 min, 2 min backoff, on the minute grid).
    assert [c.attempt for c in app.h.sent(CreateShipment)] == [1, 2, 3, 4]
    assert app.h.sent(RefundPayment) == []
    await app.assert_books_balance(order_id)


async def test_a_label_issued_after_the_deadline_is_voided(store: SagaStore) -> None:
    """Shipping was slow, not failing: its CreateShipment is still queued when the
    deadline fires. The label it gets afterwards is voided by the compensation."""
    app = await start_order_to_cash(store, services=("saga", "orders", "payment", "inventory"))
    order_id = await app.submit()  # the shipping service is stuck: nothing consumed
    await app.h.advance(timedelta(hours=1))
    await app.h.assert_state(S, order_id, S.compensating)
    assert len(app.h.waiting("shipping")) == 2  # CreateShipment, then CancelShipment
    host_services(app.h, services=["shipping"], carrier=app.carrier)  # shipping is back
    await app.h.drain()
    await app.h.assert_state(S, order_id, S.canceled)
    shipment = await shipment_of(store, order_id)
    assert shipment is not None and shipment.status == VOIDED
    assert shipment.tracking_id in app.carrier.voided
    saga = await app.saga(order_id)
    assert sorted(saga.compensation_notes) == [
        f"cancel_shipment: voided label {shipment.tracking_id}",
        "refund: refunded 25.00 EUR", "release: released 1 line(s)"]
    await app.assert_books_balance(order_id)


async def test_a_transient_gateway_failure_is_redelivered_and_charges_once(
        store: SagaStore) -> None:
    app = await start_order_to_cash(store)
    app.gateway.fail_next(3)
    order_id = await app.submit()
    await app.h.assert_state(S, order_id, S.completed)
    assert len(app.gateway.charges) == 1 and app.gateway.calls == 4
    assert app.h.sent(ChargePayment) == [ChargePayment(
        order_id=order_id, amount=Decimal("25.00"), currency="EUR")]
    await app.assert_books_balance(order_id)


async def test_many_orders_on_every_path_balance(store: SagaStore) -> None:
    settings = OrderSagaSettings(shipping_retry_budget=None,
                                 shipping_deadline=timedelta(minutes=10))
    app = await start_order_to_cash(store, settings=settings,
                                    stock={"BOOK-1": 6, "MUG-1": 50, "LAMP-1": 1})
    ids = []
    for i in range(4):
        ids.append(await app.submit(order_request(("MUG-1", i + 1, "3.10"))))
    app.gateway.decline("declined")
    ids.append(await app.submit(order_id="declined"))
    ids.append(await app.submit(order_request(("LAMP-1", 2, "40.00"))))  # no stock
    app.carrier.down_for(timedelta(hours=1))
    ids.append(await app.submit(order_request(("BOOK-1", 3, "12.50"))))  # deadline
    await app.h.advance(timedelta(minutes=10))
    states = [(await app.order(i)).status for i in ids]
    assert states == ["Completed"] * 4 + ["Canceled"] * 3
    await app.assert_books_balance(*ids)
