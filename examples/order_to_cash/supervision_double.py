"""A test double for the Step Functions bridge.

:class:`LocalSupervisionDouble` **stands in for the Step Functions bridge** until it
exists: instead of emitting ``SupervisionRequested`` on EventBridge, it sends a plain
command (:class:`RequestReview`, :class:`RequestShippingSupervision`) to the local
``supervision`` queue. Nothing consumes that queue in the app; a person (or a test)
plays the supervisor by publishing the outcome event (``ReviewApproved``,
``ShippingRecovered``…). Replace it with the bridge's implementation of
:class:`~examples.order_to_cash.supervision.Supervision` in ``OrderSagaSettings``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .messages import CreateShipment, RequestReview, RequestShippingSupervision
from .queues import SUPERVISION_QUEUE
from .supervision import SupervisionContext


@dataclass(frozen=True)
class LocalSupervisionDouble:
    """A test double: it stands in for the Step Functions bridge. Hand-offs become
    commands on a local queue; outcomes are published by whoever plays the supervisor."""

    queue: str = SUPERVISION_QUEUE
    """Where the requests go. Default ``supervision``."""

    def request_review(self, ctx: SupervisionContext) -> None:
        """Send :class:`RequestReview` to the supervision queue."""
        order = ctx.saga
        ctx.send(self.queue, RequestReview(
            order_id=order.correlation_id, customer_id=order.customer_id,
            amount=order.amount, currency=order.currency,
            reasons=tuple(order.review_reasons)))

    def request_shipping_supervision(self, ctx: SupervisionContext) -> None:
        """Send :class:`RequestShippingSupervision` to the supervision queue."""
        order = ctx.saga
        ctx.send(self.queue, RequestShippingSupervision(
            order_id=order.correlation_id, failed_attempts=order.shipment_attempt,
            last_error=order.last_shipping_error or "unknown",
            command=CreateShipment(order_id=order.correlation_id,
                                   attempt=order.shipment_attempt + 1,
                                   lines=tuple(order.lines))))
