"""The EventBridge event contracts of the saga ⇄ Step Functions seam, and the messages the
supervisor workflows put on SQS.

Every contract is a frozen pydantic model: snake_case in Python, camelCase on the wire
(``populate_by_name``), and unknown fields are ignored on read so that a newer producer
does not break an older consumer. They are :class:`core_saga.Message` types, so a saga
consumes ``SupervisionStarted`` / ``SupervisionCompleted`` envelopes like any event.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Final, Literal

import orjson
from pydantic import ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from core_saga import Message

from ._constants import (
    DETAIL_TYPE_SUPERVISION_COMPLETED,
    DETAIL_TYPE_SUPERVISION_REQUESTED,
    DETAIL_TYPE_SUPERVISION_STARTED,
    MESSAGE_NAMESPACE,
    REVIEW_TASK_URN,
    SCHEMA_VERSION,
    SUPERVISION_COMPLETED_URN,
    SUPERVISION_STARTED_URN,
    WORKFLOW_NAMES,
    WORKFLOW_SLOW_SHIPPING,
    Outcome,
    Workflow,
)
from ._limits import check_step_functions_size

HANDOFF_NAMESPACE = uuid.UUID("5d0c4a56-8f1e-5b8a-9a57-3c3e1f2b7a10")
"""The uuid5 namespace of hand-off ids (fixed forever: ids are derived from it)."""

REDACTED = "***"
"""What :meth:`redacted` shows in place of a task token."""

TRACEPARENT_PATTERN: Final = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
"""A W3C ``traceparent``: version, trace id, parent id, flags (lower-case hex)."""
QUEUE_URL_PATTERN: Final = r"^https?://[^\s/]+/\S+$"
"""An SQS queue URL: http(s), a host, a path (``https://sqs.<region>.amazonaws.com/
<account>/<queue>``; the emulator's are ``http://127.0.0.1:<port>/<account>/<queue>``)."""
MESSAGE_URN_PATTERN: Final = r"^urn:message:[^:\s]+:[^:\s]+(:v[0-9]+)?$"
"""A message type URN (``urn:message:<namespace>:<Name>:v<N>``)."""
EXECUTION_ARN_PATTERN: Final = r"^arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:execution:\S+$"
"""A Step Functions execution ARN."""

Id = Annotated[str, Field(min_length=1, max_length=256)]
"""A non-empty identifier."""
TaskToken = Annotated[str, Field(min_length=1, max_length=1024, repr=False)]
"""A Step Functions task token (opaque, at most 1024 characters)."""
ExecutionArn = Annotated[str, Field(pattern=EXECUTION_ARN_PATTERN, max_length=2048)]

SLOW_SHIPPING_PAYLOAD: Final[dict[str, Any]] = {
    "required": ["commandType", "command"],
    "properties": {
        "commandType": {"type": "string", "pattern": MESSAGE_URN_PATTERN},
        "command": {"type": "object"},
    },
}
"""What a SlowShipping hand-off's payload must hold: the shipping service's command and
its message type."""


def _per_workflow_payload(schema: dict[str, Any]) -> None:
    """JSON Schema: a SlowShipping hand-off's payload carries its command (the pydantic
    validator below says the same)."""
    schema["allOf"] = [{
        "if": {"properties": {"workflow": {"const": "SlowShipping"}},
               "required": ["workflow"]},
        "then": {"properties": {"payload": SLOW_SHIPPING_PAYLOAD}},
    }]


def handoff_id(saga_type: str, correlation_id: str, workflow: str, attempt: int = 1) -> str:
    """The deterministic id of one hand-off: a uuid5 of its saga type, correlation id,
    workflow and attempt. The same inputs give the same id, so a repeated hand-off (a
    redelivered saga message, a re-run outbox) is claimed once by the workflow; a saga
    that hands the same order off again on purpose increments `attempt`."""
    if not saga_type or not correlation_id:
        raise ValueError("saga_type and correlation_id must not be empty")
    if workflow not in WORKFLOW_NAMES:
        raise ValueError(f"workflow must be one of {WORKFLOW_NAMES}, got {workflow!r}")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError(f"attempt must be an integer >= 1, got {attempt!r}")
    name = "\x1f".join((saga_type, correlation_id, workflow, str(attempt)))
    return str(uuid.uuid5(HANDOFF_NAMESPACE, name))


class _Contract(Message):
    """Common base: a versioned contract in the bridge's namespace."""

    model_config = ConfigDict(field_title_generator=lambda name, _info: to_camel(name))

    message_namespace: ClassVar[str | None] = MESSAGE_NAMESPACE
    detail_type: ClassVar[str] = ""
    """The EventBridge ``detail-type`` of this contract ("" if it never goes on the bus)."""

    def detail_json(self) -> bytes:
        """This contract as compact JSON (camelCase), as put in an event's ``detail``."""
        return orjson.dumps(self.model_dump(mode="json", by_alias=True))


class _Supervision(_Contract):
    """The fields every supervision contract carries (those of the request)."""

    schema_version: Literal[1] = Field(default=SCHEMA_VERSION,
                                       description="Contract version: always 1 in v1.")
    handoff_id: Id = Field(description="Deterministic id of this hand-off (handoff_id()); "
                                       "the workflow claims it once.")
    saga_type: Id = Field(description="The saga's type name, e.g. OrderToCash.")
    correlation_id: Id = Field(description="The saga instance's correlation id.")
    workflow: Workflow = Field(description="Which workflow; the EventBridge rules route on it.")
    reason: str = Field(min_length=1,
                        description="Why the saga asks for supervision (shown to people).")
    payload: dict[str, Any] = Field(
        description="Workflow-specific data. SlowShipping needs commandType (a message URN) "
                    "and command (the message) for the shipping service.")
    reply_to: str = Field(pattern=QUEUE_URL_PATTERN, max_length=2048,
                          json_schema_extra={"format": "uri"},
                          description="The saga's SQS queue URL for the replies.")
    traceparent: str | None = Field(default=None, pattern=TRACEPARENT_PATTERN,
                                    description="W3C trace context (traceparent header).")


class SupervisionRequested(_Supervision):
    """The saga hands an order to a supervisor workflow (EventBridge ``detail``).

    The rule for ``workflow`` starts that workflow with this detail as its input.
    ``reply_to`` is the URL of the saga's SQS queue, where ``SupervisionStarted`` and
    ``SupervisionCompleted`` arrive.
    """

    model_config = ConfigDict(json_schema_extra=_per_workflow_payload)

    detail_type: ClassVar[str] = DETAIL_TYPE_SUPERVISION_REQUESTED

    @model_validator(mode="after")
    def _payload_fits_the_workflow(self) -> SupervisionRequested:
        if self.workflow == WORKFLOW_SLOW_SHIPPING:
            command_type = self.payload.get("commandType")
            if not isinstance(command_type, str) or not re.match(MESSAGE_URN_PATTERN,
                                                                 command_type):
                raise ValueError("a SlowShipping payload needs commandType, the shipping "
                                 "command's message URN (urn:message:<ns>:<Name>:v<N>); "
                                 f"got {command_type!r}")
            if not isinstance(self.payload.get("command"), dict):
                raise ValueError("a SlowShipping payload needs command, the shipping "
                                 "service's message (an object)")
        return self

    def check_size(self) -> bytes:
        """This detail as JSON, after checking it fits a Step Functions input (256 KiB);
        :class:`PayloadTooLargeError` otherwise."""
        detail = self.detail_json()
        check_step_functions_size(detail, handoff_id=self.handoff_id)
        return detail


class SupervisionStarted(_Supervision):
    """The workflow claimed the hand-off and runs as ``execution_arn``."""

    message_urn: ClassVar[str] = SUPERVISION_STARTED_URN
    detail_type: ClassVar[str] = DETAIL_TYPE_SUPERVISION_STARTED

    execution_arn: ExecutionArn = Field(description="The Step Functions execution's ARN.")
    started_at: datetime = Field(description="When the execution started (UTC).")


class SupervisionCompleted(_Supervision):
    """The workflow's outcome. The saga applies it, then acknowledges with
    ``SendTaskSuccess(task_token)`` after its commit; the workflow ends only then."""

    message_urn: ClassVar[str] = SUPERVISION_COMPLETED_URN
    detail_type: ClassVar[str] = DETAIL_TYPE_SUPERVISION_COMPLETED

    outcome: Outcome = Field(description="approved | rejected | timed_out (ManualReview); "
                                         "shipped | failed (SlowShipping).")
    result: dict[str, Any] = Field(
        default_factory=dict,
        description="Details: the reviewer's answer, the rejection's error and cause, or "
                    "trackingId.")
    execution_arn: ExecutionArn = Field(description="The Step Functions execution's ARN.")
    task_token: TaskToken = Field(description="The token to acknowledge with "
                                              "SendTaskSuccess. Never log it.")

    def redacted(self) -> dict[str, Any]:
        """The wire form with the task token masked, for logs and screens."""
        data = self.model_dump(mode="json", by_alias=True)
        data["taskToken"] = REDACTED
        return data


class ReviewTask(_Contract):
    """A review a person must decide, on the review queue. Approve with
    ``SendTaskSuccess(task_token, {"decision": "approved", ...})``; reject with
    ``SendTaskFailure(task_token, error="ReviewRejected", cause=...)``."""

    message_urn: ClassVar[str] = REVIEW_TASK_URN

    handoff_id: Id
    correlation_id: Id
    saga_type: Id
    reason: str = Field(min_length=1)
    payload: dict[str, Any]
    escalated: bool = Field(description="True for the second, escalated review.")
    execution_arn: ExecutionArn
    task_token: TaskToken = Field(repr=False,
                                  description="Answer with this token. Never log it.")
    entered_at: datetime | None = Field(
        default=None, description="When the workflow entered the review state (UTC); "
                                  "with timeoutSeconds, when it stops waiting.")
    timeout_seconds: int | None = Field(
        default=None, ge=1, description="How long the workflow waits for this review.")

    @property
    def deadline(self) -> datetime | None:
        """When the workflow stops waiting for this review (None when not told)."""
        if self.entered_at is None or self.timeout_seconds is None:
            return None
        return self.entered_at + timedelta(seconds=self.timeout_seconds)

    def redacted(self) -> dict[str, Any]:
        """The wire form with the task token masked, for logs and screens."""
        data = self.model_dump(mode="json", by_alias=True)
        data["taskToken"] = REDACTED
        return data


class ReviewDecision(_Contract):
    """The output a reviewer gives ``SendTaskSuccess`` to approve (extra keys are kept in
    ``SupervisionCompleted.result``)."""

    decision: Literal["approved"] = "approved"
    reviewer: str | None = None
    comment: str | None = None


CONTRACTS: tuple[type[_Contract], ...] = (
    SupervisionRequested, SupervisionStarted, SupervisionCompleted, ReviewTask)
"""Contracts with an exported JSON Schema (docs/contracts/<Name>.v1.schema.json)."""
