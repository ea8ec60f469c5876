"""What the saga remembers about each order between messages."""

from __future__ import annotations

from decimal import Decimal

from bridge import SupervisedState

from .messages import StockLine


class OrderState(SupervisedState):
    """One order's orchestration state (not the order itself: the order service owns
    that). ``correlation_id`` is the order id; ``handoffs`` records each hand-off to a
    supervisor workflow (its execution ARN and outcome)."""

    customer_id: str = ""
    amount: Decimal = Decimal(0)
    currency: str = ""
    lines: list[StockLine] = []
    review_reasons: list[str] = []
    """Why the order went to manual review (empty: it did not)."""
    payment_reference: str | None = None
    shipment_attempt: int = 0
    """CreateShipment commands sent so far; replies for older attempts are stale."""
    last_shipping_error: str | None = None
    tracking_id: str | None = None
    cancel_code: str | None = None
    cancel_reason: str | None = None
    compensations_confirmed: list[str] = []
    """The confirmations in so far (``PaymentRefunded``, ``InventoryReleased``,
    ``ShipmentCanceled``): the saga's ``AllCompensated`` composite event keeps it."""
    compensation_notes: list[str] = []
    """What each compensation reported (``refund: refunded 42.00 EUR``…)."""
    shipping_deadline_token: str | None = None
    shipment_retry_token: str | None = None
