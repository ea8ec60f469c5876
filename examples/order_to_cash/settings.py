"""The saga's runtime settings: ``OrderSaga(settings=OrderSagaSettings(...))``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from bridge import HandOffConfig
from bridge.testing import harness_queue_url

from .queues import ORDER_SAGA_QUEUE

LOCAL_BUS = "stepsaga"
"""The bus name of the local set-up (``python -m examples.order_to_cash``, the demo)."""
LOCAL_REPLY_TO = harness_queue_url(ORDER_SAGA_QUEUE)
"""The saga's reply address in process (the test harness and ``--transport memory``): an
SQS-shaped URL whose last segment is the queue name. Deployments set the real URL."""


@dataclass(frozen=True)
class OrderSagaSettings:
    """What an operator may tune without changing the saga. Bad values raise
    ``ValueError`` naming the field."""

    review_threshold: Decimal | None = Decimal("1000.00")
    """Orders whose amount is above this (in the order's currency) go to manual review
    before they are charged. Default 1000.00; None turns the check off."""
    shipping_deadline: timedelta = timedelta(hours=1)
    """How long, from the first shipment attempt, shipping may keep failing before the
    saga releases the stock, refunds the payment and cancels. Default one hour."""
    shipping_retry_initial: timedelta = timedelta(seconds=30)
    """Wait after the first failed shipment attempt; it doubles after each further
    failure. Default 30 s."""
    shipping_retry_max: timedelta = timedelta(minutes=10)
    """The longest wait between shipment attempts. Default 10 min."""
    shipping_retry_budget: int | None = 3
    """Shipment attempts the saga makes itself before it hands the order to the
    SlowShipping workflow. Default 3; None: no hand-off, retry until the deadline."""
    supervision: HandOffConfig = field(default_factory=lambda: HandOffConfig(
        bus=LOCAL_BUS, reply_to=LOCAL_REPLY_TO))
    """Where hand-offs go: the EventBridge bus, and the saga's queue URL for the
    workflows' replies. Deployments set both from the stack's outputs; the default
    (bus ``stepsaga``, :data:`LOCAL_REPLY_TO`) suits the in-process test harness."""

    def __post_init__(self) -> None:
        if self.review_threshold is not None and self.review_threshold < 0:
            raise ValueError(f"review_threshold must be 0 or more, not {self.review_threshold}")
        for name in ("shipping_deadline", "shipping_retry_initial", "shipping_retry_max"):
            value: timedelta = getattr(self, name)
            if value <= timedelta(0):
                raise ValueError(f"{name} must be positive, not {value}")
        if self.shipping_retry_max < self.shipping_retry_initial:
            raise ValueError(f"shipping_retry_max ({self.shipping_retry_max}) is shorter than "
                             f"shipping_retry_initial ({self.shipping_retry_initial})")
        if self.shipping_retry_budget is not None and self.shipping_retry_budget < 1:
            raise ValueError("shipping_retry_budget must be 1 or more (or None), not "
                             f"{self.shipping_retry_budget}")

    def retry_delay(self, failed_attempts: int) -> timedelta:
        """The wait after `failed_attempts` failures: initial × 2^(n-1), capped."""
        doublings = min(max(0, failed_attempts - 1), 62)
        seconds = self.shipping_retry_initial.total_seconds() * 2.0 ** doublings
        return timedelta(seconds=min(seconds, self.shipping_retry_max.total_seconds()))
