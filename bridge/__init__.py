"""The saga ⇄ Step Functions seam.

- ``bridge.contracts`` — the EventBridge event contracts (pydantic), JSON Schemas and
  the compatibility checker.
- The ``hand_off`` activity, the supervision events and the records a saga keeps of
  its hand-offs (:class:`SupervisedState`); the deadline for ``SupervisionStarted``
  with its re-publishes, Step Functions' status events, and ``SupervisionLost`` when a
  hand-off will not come back (:func:`republish_handoff` puts one on the bus again).
- The outbox sinks: :class:`EventBridgeSink` (PutEvents, ten at a time, re-sending only
  failed entries) and :class:`StepFunctionsSink` (task-token answers), registered with
  :func:`attach_bridge`; :func:`send_task_success` / :func:`send_task_failure` answer a
  task token from any consumer, after its commit.

- The operator's side: :func:`build_timeline` (one order's saga history, messages,
  hand-offs and Step Functions executions, in time order), the review store and
  :class:`ReviewService` (approve / reject pending manual reviews), the error store
  browsed and redriven (``bridge.errorstore``), and the ops
  console (``bridge.console.create_app``; its dependencies come with the ``console``
  extra, and importing ``bridge`` does not load them).

Importing the bridge masks task tokens in the AWS SDK's DEBUG logs
(:func:`redact_task_tokens_in_logs`). docs/supervision.md describes the flow and the
workflows; docs/console.md the console.
"""

from ._attach import BridgeSinks, SinkHost, attach_bridge
from ._aws import AwsClients
from ._hand_off import (
    HandOff,
    HandOffConfig,
    RecordOutcome,
    RecordStarted,
    hand_off,
    outcome_is,
    request_supervision,
    supervision_completed_event,
    supervision_started_event,
    track_supervision,
)
from ._handoffs import HandoffRecord, SupervisedState, handoffs_of
from ._log_redaction import TaskTokenFilter, redact_task_tokens_in_logs
from ._lost_handoffs import (
    OnExecutionChanged,
    OnStartedDeadline,
    mark_lost,
    republish_handoff,
    supervision_deadline_schedule,
    supervision_execution_event,
    supervision_lost_event,
)
from ._publisher import EVENTBRIDGE, EventBridgeSink, put_event
from ._task_answers import (
    TASK_ANSWER,
    StepFunctionsSink,
    TaskHeartbeats,
    send_task_failure,
    send_task_heartbeat,
    send_task_success,
)
from ._telemetry import record_handoff_lost
from .audit import AuditEntry, AuditLog
from .reviews import (
    DecisionResult,
    Review,
    ReviewService,
    ReviewStore,
    ReviewTaskConsumer,
    TaskGoneError,
)
from .timeline import ExecutionLink, Timeline, TimelineEntry, build_timeline

redact_task_tokens_in_logs()

__all__ = [
    "EVENTBRIDGE",
    "TASK_ANSWER",
    "AuditEntry",
    "AuditLog",
    "AwsClients",
    "BridgeSinks",
    "DecisionResult",
    "EventBridgeSink",
    "ExecutionLink",
    "HandOff",
    "HandOffConfig",
    "HandoffRecord",
    "OnExecutionChanged",
    "OnStartedDeadline",
    "RecordOutcome",
    "RecordStarted",
    "Review",
    "ReviewService",
    "ReviewStore",
    "ReviewTaskConsumer",
    "SinkHost",
    "StepFunctionsSink",
    "SupervisedState",
    "TaskGoneError",
    "TaskHeartbeats",
    "TaskTokenFilter",
    "Timeline",
    "TimelineEntry",
    "attach_bridge",
    "build_timeline",
    "hand_off",
    "handoffs_of",
    "mark_lost",
    "outcome_is",
    "put_event",
    "record_handoff_lost",
    "redact_task_tokens_in_logs",
    "republish_handoff",
    "request_supervision",
    "send_task_failure",
    "send_task_heartbeat",
    "send_task_success",
    "supervision_completed_event",
    "supervision_deadline_schedule",
    "supervision_execution_event",
    "supervision_lost_event",
    "supervision_started_event",
    "track_supervision",
]
