"""The operator's cancel on the Order-to-Cash saga, fed by hand on the harness: in every
state that is not final it undoes what was done, once, and ends Canceled with
``operator_canceled``; while compensating or after the end it changes nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core_saga import OPERATOR_CANCELED, OperatorCancel, handles_operator_cancel
from core_saga.persistence import SagaStore
from core_saga.testing import SagaTestHarness
from examples.order_to_cash.messages import (
    CancelShipment,
    ChargePayment,
    InventoryReleased,
    OrderCanceled,
    PaymentRefunded,
    RefundPayment,
    ReleaseInventory,
    ShipmentCanceled,
)
from tests.order_to_cash.test_saga_events import (
    ID,
    S,
    charged,
    saga_only,
    submitted,
    to_compensating,
    to_shipping_pending,
)

CANCEL = OperatorCancel(correlation_id=ID, actor="olga", reason="customer called")
REFUNDED = PaymentRefunded(order_id=ID, refunded=True, amount=Decimal("25.00"),
                           currency="EUR", note="refunded")


def test_the_order_saga_opts_in() -> None:
    assert handles_operator_cancel(S.model)


async def _canceled_once(h: SagaTestHarness) -> None:
    await h.assert_state(S, ID, S.canceled)
    [event] = h.published(OrderCanceled)
    assert event.code == OPERATOR_CANCELED
    assert event.reason == "canceled by olga: customer called"
    assert h.faults == []


async def test_awaiting_review_cancels_at_once(store: SagaStore) -> None:
    h = await saga_only(store)
    await h.publish(submitted(risk_flags=["new customer"]))
    await h.assert_state(S, ID, S.awaiting_review)
    await h.publish(CANCEL)
    await _canceled_once(h)
    assert h.sent(ChargePayment) == [] and h.sent(RefundPayment) == []


async def test_payment_pending_refunds_then_cancels(store: SagaStore) -> None:
    h = await saga_only(store)
    await h.publish(submitted())
    await h.assert_state(S, ID, S.payment_pending)
    await h.publish(CANCEL)
    await h.publish(CANCEL)  # a second cancel while compensating changes nothing
    await h.assert_state(S, ID, S.compensating_payment)
    assert len(h.sent(RefundPayment)) == 1 and h.sent(ReleaseInventory) == []
    await h.publish(charged())  # the charge that was on its way: the refund covers it
    await h.publish(REFUNDED)
    await _canceled_once(h)


async def test_shipping_pending_compensates_everything_and_stops_its_timers(
        store: SagaStore) -> None:
    h = await saga_only(store)
    await to_shipping_pending(h)
    await h.publish(CANCEL)
    await h.assert_state(S, ID, S.compensating)
    assert len(h.sent(RefundPayment)) == len(h.sent(ReleaseInventory)) == len(
        h.sent(CancelShipment)) == 1
    saga = await h.instance(S, ID)
    assert saga is not None and saga.shipping_deadline_token is None
    for reply in (REFUNDED, InventoryReleased(order_id=ID, released=True, note="ok"),
                  ShipmentCanceled(order_id=ID, voided=False, note="no shipment")):
        await h.publish(reply)
    await _canceled_once(h)
    await h.publish(CANCEL)  # after the end: ignored
    await h.assert_state(S, ID, S.canceled)
    assert len(h.published(OrderCanceled)) == 1 and len(h.sent(RefundPayment)) == 1


@pytest.mark.parametrize("store", ["memory"], indirect=True)
async def test_a_cancel_while_compensating_keeps_the_first_reason(store: SagaStore) -> None:
    h = await saga_only(store)
    await to_compensating(h)
    await h.publish(CANCEL)
    await h.assert_state(S, ID, S.compensating)
    saga = await h.instance(S, ID)
    assert saga is not None and saga.cancel_code == "shipping_deadline"
    assert len(h.sent(RefundPayment)) == 1 and h.faults == []
