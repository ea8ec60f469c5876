"""The EventBridge event contracts of the saga ⇄ Step Functions seam (pydantic v2), their
names and limits, JSON Schema export and a compatibility checker.

The saga emits :class:`SupervisionRequested` on the bus; the supervisor workflow replies
on the saga's queue with :class:`SupervisionStarted` and :class:`SupervisionCompleted`
(envelopes whose ``messageType`` is the contract's URN), and puts :class:`ReviewTask`
on the review queue. Schemas: ``docs/contracts/<Name>.v1.schema.json``
(``stepsaga contracts export docs/contracts`` re-exports them; ``stepsaga contracts check
OLD NEW`` fails on a breaking change, see :func:`compare_schema_directories`).
"""

from ._compat import BreakingChange, find_breaking_changes
from ._constants import (
    DETAIL_TYPE_SUPERVISION_COMPLETED,
    DETAIL_TYPE_SUPERVISION_REQUESTED,
    DETAIL_TYPE_SUPERVISION_STARTED,
    DETAIL_TYPES,
    EVENT_SOURCE_PREFIX,
    MAX_EVENTBRIDGE_ENTRY_BYTES,
    MAX_SQS_MESSAGE_BYTES,
    MAX_STEP_FUNCTIONS_INPUT_BYTES,
    MESSAGE_NAMESPACE,
    MESSAGE_TYPE_ATTRIBUTE,
    OUTCOMES,
    REVIEW_REJECTED_ERROR,
    REVIEW_TASK_URN,
    SCHEMA_VERSION,
    SHIPPING_UNAVAILABLE_ERROR,
    SUPERVISION_COMPLETED_URN,
    SUPERVISION_STARTED_URN,
    TASK_TOKEN_HEADER,
    TRACEPARENT_HEADER,
    WORKFLOW_MANUAL_REVIEW,
    WORKFLOW_NAMES,
    WORKFLOW_SLOW_SHIPPING,
    Outcome,
    Workflow,
    event_source,
)
from ._directories import ContractBreak, SchemaDirectoryError, compare_schema_directories
from ._events import (
    CONTRACTS,
    EXECUTION_ARN_PATTERN,
    HANDOFF_NAMESPACE,
    MESSAGE_URN_PATTERN,
    QUEUE_URL_PATTERN,
    REDACTED,
    TRACEPARENT_PATTERN,
    ReviewDecision,
    ReviewTask,
    SupervisionCompleted,
    SupervisionRequested,
    SupervisionStarted,
    handoff_id,
)
from ._limits import PayloadTooLargeError, check_eventbridge_entry_size, check_step_functions_size
from ._schema import contract_schema, export_schemas, render_schema, schema_file_name

__all__ = [
    "CONTRACTS",
    "DETAIL_TYPES",
    "DETAIL_TYPE_SUPERVISION_COMPLETED",
    "DETAIL_TYPE_SUPERVISION_REQUESTED",
    "DETAIL_TYPE_SUPERVISION_STARTED",
    "EVENT_SOURCE_PREFIX",
    "EXECUTION_ARN_PATTERN",
    "HANDOFF_NAMESPACE",
    "MAX_EVENTBRIDGE_ENTRY_BYTES",
    "MAX_SQS_MESSAGE_BYTES",
    "MAX_STEP_FUNCTIONS_INPUT_BYTES",
    "MESSAGE_NAMESPACE",
    "MESSAGE_TYPE_ATTRIBUTE",
    "MESSAGE_URN_PATTERN",
    "OUTCOMES",
    "QUEUE_URL_PATTERN",
    "REDACTED",
    "REVIEW_REJECTED_ERROR",
    "REVIEW_TASK_URN",
    "SCHEMA_VERSION",
    "SHIPPING_UNAVAILABLE_ERROR",
    "SUPERVISION_COMPLETED_URN",
    "SUPERVISION_STARTED_URN",
    "TASK_TOKEN_HEADER",
    "TRACEPARENT_HEADER",
    "TRACEPARENT_PATTERN",
    "WORKFLOW_MANUAL_REVIEW",
    "WORKFLOW_NAMES",
    "WORKFLOW_SLOW_SHIPPING",
    "BreakingChange",
    "ContractBreak",
    "Outcome",
    "PayloadTooLargeError",
    "ReviewDecision",
    "ReviewTask",
    "SchemaDirectoryError",
    "SupervisionCompleted",
    "SupervisionRequested",
    "SupervisionStarted",
    "Workflow",
    "check_eventbridge_entry_size",
    "check_step_functions_size",
    "compare_schema_directories",
    "contract_schema",
    "event_source",
    "export_schemas",
    "find_breaking_changes",
    "handoff_id",
    "render_schema",
    "schema_file_name",
]
