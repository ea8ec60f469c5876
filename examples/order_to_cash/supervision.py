"""The hand-off seam: where the saga asks for a person or for Step Functions.

The saga enters ``AwaitingReview`` or ``AwaitingShippingSupervision`` through one
object, the :class:`Supervision` in its settings. Each method adds the outgoing messages
of a hand-off to the behavior's outbox (``ctx.send``, ``ctx.publish`` or ``ctx.add`` for
another sink) and returns; the outcome comes back later as an event the saga handles:
``ReviewApproved`` / ``ReviewRejected`` / ``ReviewTimedOut`` and ``ShippingRecovered`` /
``ShippingAbandoned`` (or a ``ShipmentCreated`` when shipping recovers on its own).

Today the default is :class:`~examples.order_to_cash.supervision_double.LocalSupervisionDouble`,
which stands in for the Step Functions bridge. The bridge (``bridge.hand_off``) will
implement this protocol without changing the saga's states or events.
"""

from __future__ import annotations

from typing import Any, Protocol

from core_saga import BehaviorContext

from .state import OrderState

SupervisionContext = BehaviorContext[OrderState, Any]
"""The behavior context a hand-off runs in: the order's state, any triggering event."""


class Supervision(Protocol):
    """Hands orders over to supervision. Implementations only add outgoing messages
    (they run inside the saga's transaction and must not do I/O of their own)."""

    def request_review(self, ctx: SupervisionContext) -> None:
        """Ask for a manual review of the order (``ctx.saga.review_reasons`` says why)."""
        ...

    def request_shipping_supervision(self, ctx: SupervisionContext) -> None:
        """Ask supervision to get the order shipped; the saga's retry budget is spent
        (``ctx.saga.shipment_attempt`` tries, the last error in
        ``ctx.saga.last_shipping_error``)."""
        ...
