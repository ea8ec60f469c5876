"""Names and limits shared by the saga, the EventBridge bridge and the supervisor workflows."""

from __future__ import annotations

from typing import Final, Literal

SCHEMA_VERSION: Final = 1
"""The ``schemaVersion`` every v1 contract carries."""

EVENT_SOURCE_PREFIX: Final = "stepsaga."
"""EventBridge ``source`` of a saga's events: the prefix plus the saga type."""

DETAIL_TYPE_SUPERVISION_REQUESTED: Final = "SupervisionRequested"
DETAIL_TYPE_SUPERVISION_STARTED: Final = "SupervisionStarted"
DETAIL_TYPE_SUPERVISION_COMPLETED: Final = "SupervisionCompleted"
DETAIL_TYPES: Final = (DETAIL_TYPE_SUPERVISION_REQUESTED, DETAIL_TYPE_SUPERVISION_STARTED,
                       DETAIL_TYPE_SUPERVISION_COMPLETED)

MESSAGE_NAMESPACE: Final = "stepsaga.bridge"
"""The URN namespace of the bridge's messages (``urn:message:stepsaga.bridge:<Name>:v1``)."""

SUPERVISION_STARTED_URN: Final = "urn:message:stepsaga.bridge:SupervisionStarted:v1"
SUPERVISION_COMPLETED_URN: Final = "urn:message:stepsaga.bridge:SupervisionCompleted:v1"
REVIEW_TASK_URN: Final = "urn:message:stepsaga.bridge:ReviewTask:v1"

WORKFLOW_MANUAL_REVIEW: Final = "ManualReview"
WORKFLOW_SLOW_SHIPPING: Final = "SlowShipping"
Workflow = Literal["ManualReview", "SlowShipping"]
"""The supervisor workflows; the EventBridge rules route on ``detail.workflow``."""
WORKFLOW_NAMES: Final = (WORKFLOW_MANUAL_REVIEW, WORKFLOW_SLOW_SHIPPING)

Outcome = Literal["approved", "rejected", "timed_out", "shipped", "failed"]
"""How a supervision ended, as told to the saga in ``SupervisionCompleted.outcome``."""
OUTCOMES: Final = ("approved", "rejected", "timed_out", "shipped", "failed")

REVIEW_REJECTED_ERROR: Final = "ReviewRejected"
"""The ``error`` a reviewer gives ``SendTaskFailure`` to reject."""
SHIPPING_UNAVAILABLE_ERROR: Final = "ShippingUnavailable"
"""The ``error`` the shipping service gives ``SendTaskFailure`` when it cannot ship now."""

TASK_TOKEN_HEADER: Final = "taskToken"
"""Envelope header carrying the token a consumer answers a waiting workflow with."""
TRACEPARENT_HEADER: Final = "traceparent"
"""Envelope header (and SQS message attribute) carrying the W3C trace context."""
MESSAGE_TYPE_ATTRIBUTE: Final = "MessageType"
"""SQS message attribute carrying the envelope's ``messageType``."""

MAX_STEP_FUNCTIONS_INPUT_BYTES: Final = 256 * 1024
"""Step Functions' limit on an execution's input (and any state's data): 256 KiB."""
MAX_EVENTBRIDGE_ENTRY_BYTES: Final = 1024 * 1024
"""EventBridge's limit on one PutEvents entry (1 MB since January 2026; callers may pass
another limit)."""
MAX_SQS_MESSAGE_BYTES: Final = 1024 * 1024
"""SQS's limit on one message (1 MB since January 2026; callers may pass another limit)."""


def event_source(saga_type: str) -> str:
    """The EventBridge ``source`` for events of `saga_type`, e.g. ``stepsaga.OrderToCash``."""
    if not saga_type:
        raise ValueError("saga_type must not be empty")
    return f"{EVENT_SOURCE_PREFIX}{saga_type}"
