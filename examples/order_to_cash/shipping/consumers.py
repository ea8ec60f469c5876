"""The shipping service's consumers: create a shipment (at most one per order) and
cancel it."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bridge import TaskHeartbeats, send_task_failure, send_task_success
from bridge.contracts import SHIPPING_UNAVAILABLE_ERROR
from core_saga import ConsumeContext, Consumer

from ..messages import (
    CancelShipment,
    CreateShipment,
    ShipmentCanceled,
    ShipmentCreated,
    ShipmentFailed,
)
from .carrier import Carrier, CarrierUnavailable
from .repository import CANCELED, CREATED, VOIDED, Shipment, ShippingRepository

log = logging.getLogger("examples.order_to_cash.shipping")


class CreateShipmentConsumer(Consumer[CreateShipment]):
    """Gets a label from the carrier, once per order; an order whose shipment was
    canceled gets no label.

    Who asked decides how it is answered. The saga's own command is answered with
    ``ShipmentCreated`` or ``ShipmentFailed`` (the saga decides when to try again). A
    command from the SlowShipping workflow carries a task token: it is answered on the
    token after the commit, ``SendTaskSuccess`` with the tracking id, or
    ``SendTaskFailure("ShippingUnavailable")`` while the carrier is down (the workflow
    retries with backoff within its deadline). A canceled shipment is answered with
    success but no tracking id, which the workflow reports as failed at once. With
    `heartbeats`, a workflow's task gets ``SendTaskHeartbeat`` while the carrier call
    runs (a carrier can take minutes to issue a label).
    """

    def __init__(self, carrier: Carrier, heartbeats: TaskHeartbeats | None = None) -> None:
        self.carrier = carrier
        self.heartbeats = heartbeats

    async def consume(self, ctx: ConsumeContext[CreateShipment]) -> None:
        command = ctx.message
        token = ctx.task_token
        repo = ShippingRepository(ctx.transaction)
        shipment = await repo.get(command.order_id)
        if shipment is None:
            try:
                label = await self._create_label(command, token)
            except CarrierUnavailable as exc:
                if token:
                    send_task_failure(ctx, token, SHIPPING_UNAVAILABLE_ERROR, str(exc))
                else:
                    ctx.publish(ShipmentFailed(order_id=command.order_id,
                                               attempt=command.attempt, reason=str(exc)))
                return
            shipment = Shipment(command.order_id, CREATED, label.tracking_id, label.carrier,
                                f"label issued on attempt {command.attempt}", ctx.now, ctx.now)
            await repo.add(shipment)
        elif shipment.status == CANCELED and shipment.tracking_id is None:
            await self._void_stray_label(command, repo, ctx.now)
        if shipment.status == CREATED and shipment.tracking_id:
            if token:
                send_task_success(ctx, token, {"trackingId": shipment.tracking_id,
                                               "carrier": shipment.carrier or ""})
            else:
                ctx.publish(ShipmentCreated(order_id=command.order_id,
                                            tracking_id=shipment.tracking_id,
                                            carrier=shipment.carrier or ""))
        elif token:
            send_task_success(ctx, token, {"status": shipment.status,
                                           "note": f"the order's shipment is {shipment.status}"})
        else:
            ctx.publish(ShipmentFailed(order_id=command.order_id, attempt=command.attempt,
                                       reason=f"the order's shipment is {shipment.status}"))


    async def _void_stray_label(self, command: CreateShipment, repo: ShippingRepository,
                                now: datetime) -> None:
        """The order's shipment was canceled before any label was recorded, but an earlier
        delivery of this command may have got one from the carrier and then not
        committed (a crash, a cut connection, or the cancel's marker committed first):
        void it, best effort, as :class:`CancelShipmentConsumer` voids a recorded one."""
        try:
            stray = await self.carrier.label_for(idempotency_key=_label_key(command))
            if stray is None:
                return
            await self.carrier.void_label(tracking_id=stray.tracking_id)
        except CarrierUnavailable as exc:
            log.warning("could not check the carrier for a stray label of %s: %s",
                        command.order_id, exc)
            return
        await repo.set_status(command.order_id, CANCELED,
                              f"canceled before any label was recorded; voided label "
                              f"{stray.tracking_id} issued by an earlier attempt", now)

    async def _create_label(self, command: CreateShipment, token: str | None) -> Any:
        call = self.carrier.create_label(order_id=command.order_id, lines=command.lines,
                                         idempotency_key=_label_key(command))
        if self.heartbeats is None or not token:
            return await call
        async with self.heartbeats.keep_alive(token):
            return await call


def _label_key(command: CreateShipment) -> str:
    """One label per order, however often it is asked for."""
    return f"{command.order_id}:label"


class CancelShipmentConsumer(Consumer[CancelShipment]):
    """Makes sure the order will not ship: voids its label if it has one, or leaves a
    marker so no label is ever issued. Idempotent. Voiding at the carrier is best
    effort (an unused label costs nothing); the record here is what the warehouse
    reads."""

    def __init__(self, carrier: Carrier) -> None:
        self.carrier = carrier

    async def consume(self, ctx: ConsumeContext[CancelShipment]) -> None:
        order_id = ctx.message.order_id
        repo = ShippingRepository(ctx.transaction)
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
