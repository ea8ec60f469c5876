"""The messages that keep a hand-off from getting lost unseen.

- :class:`SupervisionDeadlineExpired`: the saga's own durable timer, armed with each
  (re-)publish of a hand-off; it fires when ``SupervisionStarted`` has not come in time.
- :class:`SupervisionExecutionChanged`: Step Functions' own "Step Functions Execution
  Status Change" event (source ``aws.states``, on the account's default bus) for a
  supervisor execution that ended FAILED, TIMED_OUT or ABORTED. An EventBridge rule puts
  it on the saga's queue in an envelope (:func:`status_event_input_template`); the
  message is the event itself, and the hand-off it belongs to is read from the
  execution's input (the ``SupervisionRequested`` detail).
- :class:`SupervisionLost`: what the saga is told when a hand-off will not come back:
  never started after every re-publish, or its execution ended without an outcome.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Literal

import orjson
from pydantic import Field, model_validator

from ._constants import MESSAGE_NAMESPACE, Workflow
from ._events import HANDOFF_NAMESPACE, Id, _Contract

STEP_FUNCTIONS_SOURCE: Final = "aws.states"
"""The ``source`` of Step Functions' own events."""
EXECUTION_STATUS_DETAIL_TYPE: Final = "Step Functions Execution Status Change"
"""The ``detail-type`` of Step Functions' execution status events."""
UNFINISHED_STATUSES: Final = ("FAILED", "TIMED_OUT", "ABORTED")
"""Execution statuses that end a supervisor workflow without an outcome for the saga."""
SUPERVISION_EXECUTION_CHANGED_URN: Final = (
    "urn:message:stepsaga.bridge:SupervisionExecutionChanged:v1")
SUPERVISION_LOST_URN: Final = "urn:message:stepsaga.bridge:SupervisionLost:v1"
SUPERVISION_DEADLINE_URN: Final = "urn:message:stepsaga.bridge:SupervisionDeadlineExpired:v1"

ExecutionStatus = Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED",
                          "PENDING_REDRIVE"]
LostCause = Literal["not_started", "execution_failed", "execution_timed_out",
                    "execution_aborted"]
"""Why a hand-off is lost: no ``SupervisionStarted`` after every publish, or the
execution ended FAILED, TIMED_OUT or ABORTED before the saga had its outcome."""


def lost_cause(status: str) -> LostCause:
    """The :data:`LostCause` of an execution that ended with `status`."""
    causes: dict[str, LostCause] = {"FAILED": "execution_failed",
                                    "TIMED_OUT": "execution_timed_out",
                                    "ABORTED": "execution_aborted"}
    if status not in causes:
        raise ValueError(f"execution status {status!r} does not lose a hand-off; one of "
                         f"{', '.join(causes)}")
    return causes[status]


def status_event_input_template() -> dict[str, Any]:
    """The ``InputTransformer`` of the status rule's SQS target: an envelope (fresh per
    event: the message id is the event id, so EventBridge's own retries are absorbed by
    the saga's inbox) whose message is the whole event (``<aws.events.event.json>``)."""
    template = ('{"messageId": "<id>", "messageType": "' + SUPERVISION_EXECUTION_CHANGED_URN
                + '", "correlationId": null, "conversationId": null, "causationId": null, '
                '"sentTime": "<time>", "headers": {}, "message": <aws.events.event.json>}')
    return {"InputPathsMap": {"id": "$.id", "time": "$.time"}, "InputTemplate": template}


def status_event_pattern(state_machine_arns: list[str]) -> dict[str, Any]:
    """The status rule's pattern (default bus): Step Functions status events of the
    supervisor state machines, for the statuses in :data:`UNFINISHED_STATUSES`."""
    return {"source": [STEP_FUNCTIONS_SOURCE], "detail-type": [EXECUTION_STATUS_DETAIL_TYPE],
            "detail": {"status": list(UNFINISHED_STATUSES),
                       "stateMachineArn": list(state_machine_arns)}}


class SupervisionDeadlineExpired(_Contract):
    """The saga's timer: ``SupervisionStarted`` for `handoff_id` did not arrive within
    the hand-off's deadline."""

    message_urn: ClassVar[str] = SUPERVISION_DEADLINE_URN

    handoff_id: Id
    correlation_id: Id
    publishes: int = Field(ge=1, description="How many times the hand-off had been put on "
                                             "the bus when this timer was armed.")


class SupervisionLost(_Contract):
    """The hand-off `handoff_id` will not come back with an outcome: the saga decides
    what the order does instead (the Order-to-Cash saga compensates and cancels)."""

    message_urn: ClassVar[str] = SUPERVISION_LOST_URN

    handoff_id: Id
    correlation_id: Id
    workflow: Workflow
    cause: LostCause
    detail: str = Field(description="What happened, for people (the execution's error "
                                    "and cause, or how long it waited).")
    execution_arn: str | None = None

    @staticmethod
    def message_id_for(handoff_id: str) -> str:
        """The envelope's message id: one per hand-off, so a repeat is absorbed by the
        saga's inbox."""
        return str(uuid.uuid5(HANDOFF_NAMESPACE, f"{handoff_id}\x1flost"))


class SupervisionExecutionChanged(_Contract):
    """A supervisor execution's status change, from Step Functions' own event.

    Read from the EventBridge event (``{"id", "detail-type", "source", "time", "detail":
    {"executionArn", "stateMachineArn", "status", "input", "error", "cause", ...}}``),
    or from its own camelCase form (a message redriven from the error store).
    """

    message_namespace: ClassVar[str | None] = MESSAGE_NAMESPACE
    message_urn: ClassVar[str] = SUPERVISION_EXECUTION_CHANGED_URN

    event_id: Id
    status: ExecutionStatus
    execution_arn: Id
    state_machine_arn: str = ""
    handoff_id: Id
    correlation_id: Id
    saga_type: Id
    workflow: Workflow
    error: str | None = None
    cause: str | None = None
    stopped_at: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_event(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "detail" not in data:
            return data
        if data.get("source") != STEP_FUNCTIONS_SOURCE or data.get(
                "detail-type") != EXECUTION_STATUS_DETAIL_TYPE:
            raise ValueError(f"not a Step Functions execution status event (source "
                             f"{data.get('source')!r}, detail-type {data.get('detail-type')!r})")
        detail = data["detail"]
        if not isinstance(detail, dict):
            raise ValueError("the event's detail must be an object")
        raw_input = detail.get("input")
        try:
            request = orjson.loads(raw_input) if isinstance(raw_input, str) else raw_input
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"the execution's input is not JSON: {exc}") from None
        if not isinstance(request, dict):
            raise ValueError("the execution's input is not a SupervisionRequested detail "
                             "(no input in the event)")
        stop = detail.get("stopDate")
        return {
            "eventId": data.get("id"), "status": detail.get("status"),
            "executionArn": detail.get("executionArn"),
            "stateMachineArn": detail.get("stateMachineArn") or "",
            "handoffId": request.get("handoffId"), "correlationId": request.get("correlationId"),
            "sagaType": request.get("sagaType"), "workflow": request.get("workflow"),
            "error": detail.get("error"), "cause": detail.get("cause"),
            "stoppedAt": (datetime.fromtimestamp(stop / 1000, tz=UTC)
                          if isinstance(stop, int | float) else None),
        }

    @property
    def unfinished(self) -> bool:
        """True when the execution ended without an outcome (FAILED, TIMED_OUT,
        ABORTED)."""
        return self.status in UNFINISHED_STATUSES

    def describe(self) -> str:
        """``ABORTED`` / ``FAILED (Error: cause)``, for reasons shown to people."""
        why = ": ".join(part for part in (self.error, self.cause) if part)
        return f"{self.status} ({why})" if why else self.status
