"""The supervisor workflows — Step Functions Standard state machines — as Amazon States
Language built in Python: one source of truth for the CDK app and the tests.

    from supervisor_workflows import WORKFLOWS, SUBSTITUTIONS, render_definition

    definition = WORKFLOWS["ManualReview"]()          # a dict with ${...} placeholders
    text = render_definition(definition, {"ClaimTableName": "claims",
                                          "ReviewQueueUrl": url, "ShippingQueueUrl": url})

Each workflow's input is the ``SupervisionRequested`` detail (rule InputPath ``$.detail``).
See docs/supervision.md.
"""

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from ._asl import (
    CLAIM_TABLE,
    DELIVERY_FAILED_ERROR,
    REVIEW_QUEUE,
    SHIPPING_QUEUE,
    SUBSTITUTIONS,
    placeholders_in,
    render_definition,
)
from ._manual_review import ManualReviewTimings, manual_review_definition
from ._mermaid import to_mermaid
from ._slow_shipping import MAX_SHIPPING_RETRIES, SlowShippingTimings, slow_shipping_definition

WORKFLOWS: Mapping[str, Callable[..., dict[str, Any]]] = MappingProxyType({
    "ManualReview": manual_review_definition,
    "SlowShipping": slow_shipping_definition,
})
"""Definition builders by workflow name (the ``workflow`` the EventBridge rules route on)."""

__all__ = [
    "CLAIM_TABLE",
    "DELIVERY_FAILED_ERROR",
    "MAX_SHIPPING_RETRIES",
    "REVIEW_QUEUE",
    "SHIPPING_QUEUE",
    "SUBSTITUTIONS",
    "WORKFLOWS",
    "ManualReviewTimings",
    "SlowShippingTimings",
    "manual_review_definition",
    "placeholders_in",
    "render_definition",
    "slow_shipping_definition",
    "to_mermaid",
]
