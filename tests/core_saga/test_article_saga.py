"""The reference article's Order-to-Cash saga, in the harness, on every store."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from core_saga.persistence import SagaStore
from core_saga.testing import SagaTestHarness
from examples.quickstart.article_saga import (
    AllocateInventory,
    ArticleOrderSaga,
    ChargePayment,
    CreateShipment,
    InventoryAllocated,
    InventoryUnavailable,
    OrderSubmitted,
    PaymentFailed,
    PaymentSucceeded,
    RefundPayment,
    ShipmentCreated,
)

S = ArticleOrderSaga


async def _submitted(store: SagaStore, order: str = "o-1") -> SagaTestHarness:
    h = SagaTestHarness(store=store)
    h.add_saga(ArticleOrderSaga())
    await h.publish(OrderSubmitted(order_id=order, amount=Decimal("42.00")))
    return h


async def test_happy_path_reaches_completed(store: SagaStore) -> None:
    h = await _submitted(store)
    await h.assert_state(S, "o-1", S.payment_pending)
    assert h.sent(ChargePayment, queue="charge-payment") == [
        ChargePayment(order_id="o-1", amount=Decimal("42.00"))]
    await h.publish(PaymentSucceeded(order_id="o-1"))
    await h.assert_state(S, "o-1", S.inventory_pending)
    assert h.sent(AllocateInventory) == [AllocateInventory(order_id="o-1")]
    await h.publish(InventoryAllocated(order_id="o-1"))
    await h.assert_state(S, "o-1", S.shipping_pending)
    assert h.sent(CreateShipment) == [CreateShipment(order_id="o-1")]
    await h.publish(ShipmentCreated(order_id="o-1", tracking_id="TRK-1"))
    await h.assert_state(S, "o-1", S.completed)
    instance = await h.instance(S, "o-1")
    assert instance is not None and instance.tracking_id == "TRK-1"
    assert h.sent(RefundPayment) == []
    # The shipment timer was cancelled: an hour later nothing happens.
    await h.advance(timedelta(hours=2))
    await h.assert_state(S, "o-1", S.completed)
    assert await store.pending_outbox() == []
    history = [(r.from_state, r.event, r.to_state) for r in await h.history(S, "o-1")]
    assert history == [
        ("Initial", "OrderSubmitted", "PaymentPending"),
        ("PaymentPending", "PaymentSucceeded", "InventoryPending"),
        ("InventoryPending", "InventoryAllocated", "ShippingPending"),
        ("ShippingPending", "ShipmentCreated", "Completed"),
    ]


async def test_payment_failed_goes_to_failed_without_inventory(store: SagaStore) -> None:
    h = await _submitted(store)
    await h.publish(PaymentFailed(order_id="o-1", error_code="card_declined"))
    await h.assert_state(S, "o-1", S.failed)
    assert h.sent(AllocateInventory) == [] and h.sent(RefundPayment) == []


async def test_inventory_unavailable_refunds_and_fails(store: SagaStore) -> None:
    h = await _submitted(store)
    await h.publish(PaymentSucceeded(order_id="o-1"))
    await h.publish(InventoryUnavailable(order_id="o-1"))
    await h.assert_state(S, "o-1", S.failed)
    assert h.sent(RefundPayment) == [RefundPayment(order_id="o-1", amount=Decimal("42.00"))]
    assert h.sent(CreateShipment) == []


async def test_shipment_timeout_after_one_hour_refunds_and_fails(store: SagaStore) -> None:
    h = await _submitted(store)
    await h.publish(PaymentSucceeded(order_id="o-1"))
    await h.publish(InventoryAllocated(order_id="o-1"))
    await h.advance(timedelta(minutes=59))
    await h.assert_state(S, "o-1", S.shipping_pending)
    await h.advance(timedelta(minutes=1))
    await h.assert_state(S, "o-1", S.failed)
    assert h.sent(RefundPayment) == [RefundPayment(order_id="o-1", amount=Decimal("42.00"))]
    instance = await h.instance(S, "o-1")
    assert instance is not None and instance.failure_reason == "shipment timed out"
    # A shipment confirmation arriving after the timeout is not handled in Failed.
    await h.publish(ShipmentCreated(order_id="o-1", tracking_id="late"))
    await h.assert_state(S, "o-1", S.failed)
    assert any("ShipmentCreated" in reason and "Failed" in reason for _, reason in h.faults)


async def test_duplicate_message_id_is_applied_once(store: SagaStore) -> None:
    h = await _submitted(store)
    envelope = await h.publish(PaymentSucceeded(order_id="o-1"))
    await h.send_envelope("article-order-saga", envelope)
    await h.assert_state(S, "o-1", S.inventory_pending)
    assert len(h.sent(AllocateInventory)) == 1
    assert h.faults == []
