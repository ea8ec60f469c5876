"""The shipping service's consumers: create a shipment (at most one per order) and
cancel it."""

from __future__ import annotations

import logging

from core_saga import ConsumeContext, Consumer

from ..messages import (
    CancelShipment,
    CreateShipment,
    ShipmentCanceled,
    ShipmentCreated,
    ShipmentFailed,
)
from .carrier import Carrier, CarrierUnavailable
from .repository import CANCELED, CREATED, VOIDED, Shipment, repository_for

log = logging.getLogger("examples.order_to_cash.shipping")


class CreateShipmentConsumer(Consumer[CreateShipment]):
    """Gets a label from the carrier, once per order. A carrier outage is answered with
    ``ShipmentFailed`` (the saga decides when to try again); an order whose shipment was
    canceled gets no label."""

    def __init__(self, carrier: Carrier) -> None:
        self.carrier = carrier

    async def consume(self, ctx: ConsumeContext[CreateShipment]) -> None:
        command = ctx.message
        repo = repository_for(ctx.transaction)
        shipment = await repo.get(command.order_id)
        if shipment is None:
            try:
                label = await self.carrier.create_label(
                    order_id=command.order_id, lines=command.lines,
                    idempotency_key=f"{command.order_id}:label")
            except CarrierUnavailable as exc:
                ctx.publish(ShipmentFailed(order_id=command.order_id, attempt=command.attempt,
                                           reason=str(exc)))
                return
            shipment = Shipment(command.order_id, CREATED, label.tracking_id, label.carrier,
                                f"label issued on attempt {command.attempt}", ctx.now, ctx.now)
            await repo.add(shipment)
        if shipment.status == CREATED and shipment.tracking_id:
            ctx.publish(ShipmentCreated(order_id=command.order_id,
                                        tracking_id=shipment.tracking_id,
                                        carrier=shipment.carrier or ""))
        else:
            ctx.publish(ShipmentFailed(order_id=command.order_id, attempt=command.attempt,
                                       reason=f"the order's shipment is {shipment.status}"))


class CancelShipmentConsumer(Consumer[CancelShipment]):
    """Makes sure the order will not ship: voids its label if it has one, or leaves a
    marker so no label is ever issued. Idempotent. Voiding at the carrier is best
    effort (an unused label costs nothing); the record here is what the warehouse
    reads."""

    def __init__(self, carrier: Carrier) -> None:
        self.carrier = carrier

    async def consume(self, ctx: ConsumeContext[CancelShipment]) -> None:
        order_id = ctx.message.order_id
        repo = repository_for(ctx.transaction)
        shipment = await repo.get(order_id)
        if shipment is None:
            await repo.add(Shipment(order_id, CANCELED, None, None,
                                    "canceled before any label was issued", ctx.now, ctx.now))
            voided, note = False, "no shipment existed; none will be created"
        elif shipment.status == CREATED:
            note = f"voided label {shipment.tracking_id}"
            try:
                await self.carrier.void_label(tracking_id=shipment.tracking_id or "")
            except CarrierUnavailable as exc:
                log.warning("could not void label %s at the carrier: %s", shipment.tracking_id,
                            exc)
                note += " (the carrier was unreachable; the label is unused)"
            await repo.set_status(order_id, VOIDED, note, ctx.now)
            voided = True
        else:
            voided, note = False, f"already {shipment.status}"
        ctx.publish(ShipmentCanceled(order_id=order_id, voided=voided, note=note))
