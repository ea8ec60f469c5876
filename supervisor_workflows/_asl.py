"""Shared pieces of the supervisor workflows' Amazon States Language (JSONPath).

The workflow's input is the ``SupervisionRequested`` detail. Every workflow:

1. claims ``handoffId`` with a conditional DynamoDB ``putItem`` (a duplicate delivery
   ends at once in the ``AlreadyClaimed`` Succeed state);
2. prepares ``$.ctx``: the trace headers and SQS message attributes of its envelopes —
   with ``traceparent`` when the input has one, without it otherwise (JSONPath cannot
   leave a key out conditionally, so a Choice picks one of two Pass states);
3. reports ``SupervisionStarted`` on ``$.replyTo``;
4. does its work, and leaves ``$.completion = {"outcome", "result"}``;
5. delivers ``SupervisionCompleted`` with ``sqs:sendMessage.waitForTaskToken`` and waits
   until the saga acknowledges it (retried on timeout, a bounded number of times).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from bridge.contracts import (
    MESSAGE_TYPE_ATTRIBUTE,
    SCHEMA_VERSION,
    SUPERVISION_COMPLETED_URN,
    SUPERVISION_STARTED_URN,
    TASK_TOKEN_HEADER,
    TRACEPARENT_HEADER,
)

CLAIM_TABLE: Final = "ClaimTableName"
"""Placeholder: the DynamoDB table (partition key ``handoffId``, a string) of claims."""
REVIEW_QUEUE: Final = "ReviewQueueUrl"
"""Placeholder: the SQS queue URL where review tasks go."""
SHIPPING_QUEUE: Final = "ShippingQueueUrl"
"""Placeholder: the SQS queue URL of the shipping service's commands."""
SUBSTITUTIONS: Final[tuple[str, ...]] = (CLAIM_TABLE, REVIEW_QUEUE, SHIPPING_QUEUE)
"""Every placeholder the definitions use, written ``${Name}`` in them (CDK
``DefinitionBody`` + ``definitionSubstitutions``)."""

MAX_TIMEOUT_SECONDS: Final = 99_999_999
"""The largest ``TimeoutSeconds`` ASL accepts."""
MAX_EXECUTION_SECONDS: Final = 365 * 86_400
"""A Standard execution runs at most one year."""
MAX_DELIVERY_ATTEMPTS: Final = 100
"""Upper bound on delivery retries (each costs ~5 history events of 25,000)."""

CLAIM_RETRY_ERRORS: Final = (
    "DynamoDB.ProvisionedThroughputExceededException",
    "DynamoDB.RequestLimitExceeded",
    "DynamoDB.InternalServerErrorException",
    "DynamoDB.ThrottlingException",
)
"""Transient claim errors, retried (never ``States.TaskFailed``: it would also match
``ConditionalCheckFailedException``)."""
SQS_RETRY_ERRORS: Final = ("SQS.SdkClientException", "SQS.AmazonSQSException")
"""Transient SQS errors of the service integration, retried."""
TIMEOUT_ERRORS: Final = ("States.Timeout", "States.HeartbeatTimeout")
"""Caught together (the local emulator never raises ``States.HeartbeatTimeout``)."""
CLAIM_CONFLICT_ERROR: Final = "DynamoDB.ConditionalCheckFailedException"
DELIVERY_FAILED_ERROR: Final = "SupervisionNotDelivered"
"""The ``Fail`` error when the saga never acknowledged ``SupervisionCompleted``."""

CLAIM = "ClaimHandoff"
ALREADY_CLAIMED = "AlreadyClaimed"
TRACE_CHOICE = "HasTraceparent"
WITH_TRACEPARENT = "WithTraceparent"
WITHOUT_TRACEPARENT = "WithoutTraceparent"
REPORT_STARTED = "ReportStarted"
DELIVER = "DeliverOutcome"
DELIVERED = "Delivered"
DELIVERY_FAILED = "OutcomeNotDelivered"

TOKEN_HEADER_OPEN: Final = '{"' + TASK_TOKEN_HEADER + '":"'
TOKEN_HEADER_CLOSE: Final = '"}'
TOKEN_HEADERS: Final = (
    "States.JsonMerge($.ctx.headers, States.StringToJson(States.Format('{}{}{}', "
    "$.ctx.tokenHeaderOpen, $$.Task.Token, $.ctx.tokenHeaderClose)), false)"
)
"""An intrinsic giving ``$.ctx.headers`` plus ``taskToken`` (for waitForTaskToken sends).

JSONPath has no object constructor, so the ``{"taskToken": ...}`` object is parsed from a
string; its braces come from ``$.ctx`` rather than the template (``\\{`` escapes in a
``States.Format`` template break moto's interpreter). Task tokens hold no quotes."""

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def placeholder(name: str) -> str:
    """``${name}``, as CDK's ``definitionSubstitutions`` replaces it."""
    if name not in SUBSTITUTIONS:
        raise KeyError(f"unknown placeholder {name!r}; known: {', '.join(SUBSTITUTIONS)}")
    return "${" + name + "}"


def placeholders_in(definition: Mapping[str, Any]) -> set[str]:
    """The placeholder names a definition uses."""
    return set(_PLACEHOLDER.findall(json.dumps(definition)))


def render_definition(definition: Mapping[str, Any], substitutions: Mapping[str, str]) -> str:
    """The definition as JSON with every ``${Name}`` replaced by ``substitutions[Name]``
    (JSON-escaped). KeyError names a placeholder without a substitution; extra
    substitutions are ignored (CDK ignores them too)."""
    text = json.dumps(definition, indent=2, sort_keys=False)
    missing = sorted(set(_PLACEHOLDER.findall(text)) - set(substitutions))
    if missing:
        raise KeyError(
            "no substitution for placeholder(s) " + ", ".join("${" + m + "}" for m in missing))

    def replace(match: re.Match[str]) -> str:
        return json.dumps(str(substitutions[match.group(1)]))[1:-1]

    return _PLACEHOLDER.sub(replace, text)


def retrier(errors: tuple[str, ...] | list[str], *, interval: int = 1, max_attempts: int = 3,
            backoff: float = 2.0, max_delay: int | None = None,
            jitter: bool = False) -> dict[str, Any]:
    """One ``Retry`` entry."""
    entry: dict[str, Any] = {"ErrorEquals": list(errors), "IntervalSeconds": interval,
                             "MaxAttempts": max_attempts, "BackoffRate": float(backoff)}
    if max_delay is not None:
        entry["MaxDelaySeconds"] = max_delay
    if jitter:
        entry["JitterStrategy"] = "FULL"
    return entry


def catcher(errors: tuple[str, ...] | list[str], next_state: str,
            result_path: str | None) -> dict[str, Any]:
    """One ``Catch`` entry; ``result_path`` None discards the error output."""
    return {"ErrorEquals": list(errors), "ResultPath": result_path, "Next": next_state}


def message_attributes(message_type: str, *, traced: bool, dynamic: bool = False
                       ) -> dict[str, Any]:
    """SQS message attributes: ``MessageType`` (a URN, or a JSONPath when `dynamic`) and,
    when `traced`, ``traceparent`` from the input."""
    type_value = ({"StringValue.$": message_type} if dynamic
                  else {"StringValue": message_type})
    attributes: dict[str, Any] = {MESSAGE_TYPE_ATTRIBUTE: {"DataType": "String", **type_value}}
    if traced:
        attributes[TRACEPARENT_HEADER] = {"DataType": "String", "StringValue.$": "$.traceparent"}
    return attributes


def envelope(*, message_type: str, message: dict[str, Any] | str,
             headers: str = "$.ctx.headers", dynamic_type: bool = False) -> dict[str, Any]:
    """An envelope template (docs/contracts-notes.md): a fresh ``messageId``
    (``States.UUID()``), the saga's ``correlationId``, the hand-off as
    ``conversationId``, ``sentTime`` the state's entry time, `headers` a JSONPath or
    intrinsic, `message` a template object or a JSONPath."""
    body: dict[str, Any] = {
        "messageId.$": "States.UUID()",
        ("messageType.$" if dynamic_type else "messageType"): message_type,
        "correlationId.$": "$.correlationId",
        "conversationId.$": "$.handoffId",
        "causationId": None,
        "sentTime.$": "$$.State.EnteredTime",
        "headers.$": headers,
    }
    if isinstance(message, str):
        body["message.$"] = message
    else:
        body["message"] = message
    return body


def supervision_fields() -> dict[str, Any]:
    """The request's fields, echoed in ``SupervisionStarted`` / ``SupervisionCompleted``
    (``traceparent`` from ``$.ctx``: null when the input had none)."""
    return {
        "schemaVersion": SCHEMA_VERSION,
        "handoffId.$": "$.handoffId",
        "sagaType.$": "$.sagaType",
        "correlationId.$": "$.correlationId",
        "workflow.$": "$.workflow",
        "reason.$": "$.reason",
        "payload.$": "$.payload",
        "replyTo.$": "$.replyTo",
        "traceparent.$": "$.ctx.traceparent",
    }


def claim_states() -> dict[str, Any]:
    """``ClaimHandoff`` (conditional putItem; then the traceparent Choice) and
    ``AlreadyClaimed`` (Succeed)."""
    return {
        CLAIM: {
            "Type": "Task",
            "Comment": "Claim the hand-off once: a duplicate delivery ends in AlreadyClaimed.",
            "Resource": "arn:aws:states:::dynamodb:putItem",
            "Parameters": {
                "TableName": placeholder(CLAIM_TABLE),
                "Item": {
                    "handoffId": {"S.$": "$.handoffId"},
                    "executionArn": {"S.$": "$$.Execution.Id"},
                    "workflow": {"S.$": "$.workflow"},
                    "sagaType": {"S.$": "$.sagaType"},
                    "correlationId": {"S.$": "$.correlationId"},
                    "claimedAt": {"S.$": "$$.State.EnteredTime"},
                },
                "ConditionExpression": "attribute_not_exists(handoffId)",
            },
            "ResultPath": None,
            "Retry": [retrier(CLAIM_RETRY_ERRORS)],
            "Catch": [catcher([CLAIM_CONFLICT_ERROR], ALREADY_CLAIMED, None)],
            "Next": TRACE_CHOICE,
        },
        ALREADY_CLAIMED: {
            "Type": "Succeed",
            "Comment": "Another execution owns this hand-off: a duplicate delivery, no-op.",
        },
    }


def context_states(next_state: str, attributes: Mapping[str, str]) -> dict[str, Any]:
    """The Choice on ``$.traceparent`` and the two Pass states writing ``$.ctx``:
    ``traceparent`` (or null), ``headers``, ``traceAttributes`` and one entry per
    `attributes` item (name → message-type URN) with that message's SQS attributes."""

    def ctx(traced: bool) -> dict[str, Any]:
        parameters: dict[str, Any] = (
            {"traceparent.$": "$.traceparent", "headers": {TRACEPARENT_HEADER + ".$":
                                                           "$.traceparent"}}
            if traced else {"traceparent": None, "headers": {}})
        parameters["tokenHeaderOpen"] = TOKEN_HEADER_OPEN
        parameters["tokenHeaderClose"] = TOKEN_HEADER_CLOSE
        parameters["traceAttributes"] = (
            {TRACEPARENT_HEADER: {"DataType": "String", "StringValue.$": "$.traceparent"}}
            if traced else {})
        for name, urn in attributes.items():
            parameters[name] = message_attributes(urn, traced=traced)
        return {"Type": "Pass", "Parameters": parameters, "ResultPath": "$.ctx",
                "Next": next_state}

    return {
        TRACE_CHOICE: {
            "Type": "Choice",
            "Comment": "Propagate traceparent only when the request carries one.",
            "Choices": [
                {"Variable": "$.traceparent", "IsPresent": False, "Next": WITHOUT_TRACEPARENT},
                {"Variable": "$.traceparent", "IsString": True, "Next": WITH_TRACEPARENT},
            ],
            "Default": WITHOUT_TRACEPARENT,
        },
        WITH_TRACEPARENT: ctx(True),
        WITHOUT_TRACEPARENT: ctx(False),
    }


def report_started_state(next_state: str) -> dict[str, Any]:
    """``ReportStarted``: ``SupervisionStarted`` on ``$.replyTo``."""
    message = {**supervision_fields(), "executionArn.$": "$$.Execution.Id",
               "startedAt.$": "$$.Execution.StartTime"}
    return {
        REPORT_STARTED: {
            "Type": "Task",
            "Comment": "Tell the saga which execution supervises it.",
            "Resource": "arn:aws:states:::sqs:sendMessage",
            "Parameters": {
                "QueueUrl.$": "$.replyTo",
                "MessageBody": envelope(message_type=SUPERVISION_STARTED_URN, message=message),
                "MessageAttributes.$": "$.ctx.startedAttributes",
            },
            "ResultPath": None,
            "Retry": [retrier(SQS_RETRY_ERRORS)],
            "Next": next_state,
        }
    }


def delivery_states(*, timeout_seconds: int, max_attempts: int) -> dict[str, Any]:
    """``DeliverOutcome`` (``SupervisionCompleted`` with a task token, retried on timeout
    `max_attempts` times), ``Delivered`` (the execution's output) and
    ``OutcomeNotDelivered`` (Fail)."""
    message = {**supervision_fields(), "executionArn.$": "$$.Execution.Id",
               "outcome.$": "$.completion.outcome", "result.$": "$.completion.result",
               "taskToken.$": "$$.Task.Token"}
    return {
        DELIVER: {
            "Type": "Task",
            "Comment": "Deliver the outcome; wait until the saga acknowledges it after its "
                       "commit (SendTaskSuccess with this task's token).",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {
                "QueueUrl.$": "$.replyTo",
                "MessageBody": envelope(message_type=SUPERVISION_COMPLETED_URN,
                                        message=message, headers=TOKEN_HEADERS),
                "MessageAttributes.$": "$.ctx.completedAttributes",
            },
            "TimeoutSeconds": timeout_seconds,
            "ResultPath": "$.acknowledgement",
            "Retry": [retrier(SQS_RETRY_ERRORS),
                      retrier(TIMEOUT_ERRORS, max_attempts=max_attempts, backoff=1.0)],
            "Catch": [catcher(["States.ALL"], DELIVERY_FAILED, "$.deliveryError")],
            "Next": DELIVERED,
        },
        DELIVERED: {
            "Type": "Pass",
            "Parameters": {"handoffId.$": "$.handoffId", "outcome.$": "$.completion.outcome",
                           "result.$": "$.completion.result"},
            "End": True,
        },
        DELIVERY_FAILED: {
            "Type": "Fail",
            "Error": DELIVERY_FAILED_ERROR,
            "Cause": f"the saga did not acknowledge SupervisionCompleted after "
                     f"{max_attempts + 1} deliveries of {timeout_seconds} s each",
        },
    }


def completion(outcome: str, result: dict[str, Any] | str, next_state: str = DELIVER
               ) -> dict[str, Any]:
    """A Pass state writing ``$.completion`` (`result` a template or a JSONPath)."""
    parameters: dict[str, Any] = {"outcome": outcome}
    if isinstance(result, str):
        parameters["result.$"] = result
    else:
        parameters["result"] = result
    return {"Type": "Pass", "Parameters": parameters, "ResultPath": "$.completion",
            "Next": next_state}


def check_seconds(owner: str, name: str, value: object, *, minimum: int = 1,
                  maximum: int = MAX_TIMEOUT_SECONDS) -> None:
    """ValueError naming `owner.name` unless `value` is an int in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{owner}.{name} must be an int, got {value!r}")
    if not minimum <= value <= maximum:
        raise ValueError(f"{owner}.{name} must be between {minimum} and {maximum}, "
                         f"got {value}")
