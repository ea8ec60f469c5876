"""The shipping service alone: one shipment per order, carrier outages answered with
ShipmentFailed, cancellation before and after the label."""

from __future__ import annotations

from datetime import timedelta

from core_saga.persistence import SagaStore
from core_saga.testing import SagaTestHarness
from examples.order_to_cash import create_tables, host_services
from examples.order_to_cash.messages import (
    CancelShipment,
    CreateShipment,
    ShipmentCanceled,
    ShipmentCreated,
    ShipmentFailed,
    StockLine,
)
from examples.order_to_cash.queues import SHIPPING_QUEUE
from examples.order_to_cash.shipping import CANCELED, CREATED, VOIDED, FakeCarrier

from .support import shipment_of

LINES = (StockLine(sku="BOOK-1", quantity=1),)


def create(attempt: int = 1) -> CreateShipment:
    return CreateShipment(order_id="o-1", attempt=attempt, lines=LINES)


async def shipping_service(store: SagaStore) -> tuple[SagaTestHarness, FakeCarrier]:
    h = SagaTestHarness(store=store)
    carrier = FakeCarrier(clock=h.clock)
    await create_tables(store)
    host_services(h, services=["shipping"], carrier=carrier, clock=h.clock)
    return h, carrier


async def test_a_carrier_outage_is_answered_with_shipment_failed(store: SagaStore) -> None:
    h, carrier = await shipping_service(store)
    carrier.down_for(timedelta(minutes=5))
    await h.send(SHIPPING_QUEUE, create(1))
    (failed,) = h.published(ShipmentFailed)
    assert failed.attempt == 1 and failed.reason.startswith("FAKEX: down until")
    assert await shipment_of(store, "o-1") is None
    await h.advance(timedelta(minutes=5))
    carrier.fail_next(1)
    await h.send(SHIPPING_QUEUE, create(2))
    assert [f.reason for f in h.published(ShipmentFailed)][1] == "FAKEX: service unavailable"
    await h.send(SHIPPING_QUEUE, create(3))
    assert len(h.published(ShipmentCreated)) == 1


async def test_an_order_gets_one_shipment_however_often_it_is_asked(store: SagaStore) -> None:
    h, carrier = await shipping_service(store)
    for attempt in (1, 2, 2):
        await h.send(SHIPPING_QUEUE, create(attempt))
    answers = h.published(ShipmentCreated)
    assert len(answers) == 3 and len({a.tracking_id for a in answers}) == 1
    assert len(carrier.labels) == 1
    shipment = await shipment_of(store, "o-1")
    assert shipment is not None and shipment.status == CREATED


async def test_a_cancel_before_the_label_means_no_label_ever(store: SagaStore) -> None:
    h, carrier = await shipping_service(store)
    await h.send(SHIPPING_QUEUE, CancelShipment(order_id="o-1"))
    assert h.published(ShipmentCanceled) == [ShipmentCanceled(
        order_id="o-1", voided=False, note="no shipment existed; none will be created")]
    await h.send(SHIPPING_QUEUE, create(1))
    assert h.published(ShipmentCreated) == [] and carrier.labels == {}
    assert h.published(ShipmentFailed)[0].reason == "the order's shipment is canceled"
    shipment = await shipment_of(store, "o-1")
    assert shipment is not None and shipment.status == CANCELED


async def test_a_cancel_after_the_label_voids_it_once(store: SagaStore) -> None:
    h, carrier = await shipping_service(store)
    await h.send(SHIPPING_QUEUE, create(1))
    tracking = h.published(ShipmentCreated)[0].tracking_id
    await h.send(SHIPPING_QUEUE, CancelShipment(order_id="o-1"))
    await h.send(SHIPPING_QUEUE, CancelShipment(order_id="o-1"))
    assert [(c.voided, c.note) for c in h.published(ShipmentCanceled)] == [
        (True, f"voided label {tracking}"), (False, "already voided")]
    assert carrier.voided == {tracking}
    shipment = await shipment_of(store, "o-1")
    assert shipment is not None and shipment.status == VOIDED


async def test_a_label_is_voided_here_even_when_the_carrier_is_down(store: SagaStore) -> None:
    h, carrier = await shipping_service(store)
    await h.send(SHIPPING_QUEUE, create(1))
    carrier.down_for(timedelta(hours=1))
    await h.send(SHIPPING_QUEUE, CancelShipment(order_id="o-1"))
    (answer,) = h.published(ShipmentCanceled)
    assert answer.voided and "carrier was unreachable" in answer.note
    shipment = await shipment_of(store, "o-1")
    assert shipment is not None and shipment.status == VOIDED and h.faults == []


async def test_a_label_issued_by_an_attempt_that_never_committed_is_voided(
        store: SagaStore) -> None:
    """Found by the reliability run on PostgreSQL: a CreateShipment got a label from the
    carrier, but its transaction did not commit (a cut connection, a killed worker);
    the saga's deadline then canceled the shipment, leaving the "no label" marker, and
    the command's redelivery answered "canceled" while the label stayed live at the
    carrier. The redelivery now looks the label up by its idempotency key and voids it."""
    h, carrier = await shipping_service(store)
    stray = await carrier.create_label(order_id="o-1", lines=LINES,
                                       idempotency_key="o-1:label")  # never recorded here
    await h.send(SHIPPING_QUEUE, CancelShipment(order_id="o-1"))
    await h.send(SHIPPING_QUEUE, create(2))                            # the redelivery
    assert carrier.voided == {stray.tracking_id}
    assert h.published(ShipmentCreated) == []
    assert h.published(ShipmentFailed)[0].reason == "the order's shipment is canceled"
    shipment = await shipment_of(store, "o-1")
    assert shipment is not None and shipment.status == CANCELED
    assert f"voided label {stray.tracking_id} issued by an earlier attempt" in shipment.note
    await h.send(SHIPPING_QUEUE, create(2))                            # and once more: no change
    assert carrier.voided == {stray.tracking_id} and h.faults == []


async def test_a_stray_label_left_while_the_carrier_is_down_does_not_fail_the_command(
        store: SagaStore) -> None:
    h, carrier = await shipping_service(store)
    await carrier.create_label(order_id="o-1", lines=LINES, idempotency_key="o-1:label")
    await h.send(SHIPPING_QUEUE, CancelShipment(order_id="o-1"))
    carrier.down_for(timedelta(hours=1))
    await h.send(SHIPPING_QUEUE, create(2))
    assert carrier.voided == set() and h.faults == []
    assert h.published(ShipmentFailed)[0].reason == "the order's shipment is canceled"
