"""The saga's hand-offs to Step Functions: what it sends each supervisor workflow.

Orders that need a person go to **ManualReview**; orders whose shipping keeps failing
past the saga's retry budget go to **SlowShipping**, which drives the shipping service
itself (task-token callbacks, retries with backoff within a deadline). Both go through
``bridge.hand_off``: ``SupervisionRequested`` on the EventBridge bus, the outcome back
as ``SupervisionCompleted`` on the saga's queue (see docs/supervision.md).
"""

from __future__ import annotations

from typing import Any

from bridge import HandOffConfig
from core_saga import BehaviorContext

from .messages import CreateShipment
from .state import OrderState

SupervisionContext = BehaviorContext[OrderState, Any]
"""The behavior context a hand-off runs in: the order's state, any triggering event."""


def handoff_config(ctx: SupervisionContext) -> HandOffConfig:
    """The bus and reply queue from the saga's settings."""
    config: HandOffConfig = ctx.machine.settings.supervision
    return config


def review_reason(ctx: SupervisionContext) -> str:
    """Why the order needs a person (shown on the review task)."""
    return "; ".join(ctx.saga.review_reasons)


def review_payload(ctx: SupervisionContext) -> dict[str, Any]:
    """What the reviewer sees of the order."""
    order = ctx.saga
    return {"orderId": order.correlation_id, "customerId": order.customer_id,
            "amount": str(order.amount), "currency": order.currency,
            "lines": [line.model_dump(mode="json", by_alias=True) for line in order.lines],
            "reasons": list(order.review_reasons)}


def shipping_reason(ctx: SupervisionContext) -> str:
    """Why shipping is handed over."""
    order = ctx.saga
    return (f"shipping failed {order.shipment_attempt} time(s): "
            f"{order.last_shipping_error or 'no answer from shipping'}")


def shipping_payload(ctx: SupervisionContext) -> dict[str, Any]:
    """The command SlowShipping sends the shipping service on each attempt (a
    ``CreateShipment`` with the attempt after the saga's last), and the history."""
    order = ctx.saga
    command = CreateShipment(order_id=order.correlation_id, attempt=order.shipment_attempt + 1,
                             lines=tuple(order.lines))
    return {"commandType": CreateShipment.message_urn,
            "command": command.model_dump(mode="json", by_alias=True),
            "failedAttempts": order.shipment_attempt,
            "lastError": order.last_shipping_error}
