"""The ManualReview workflow: a person approves or rejects; one escalation on timeout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.contracts import (
    REVIEW_REJECTED_ERROR,
    REVIEW_TASK_URN,
    SUPERVISION_COMPLETED_URN,
    SUPERVISION_STARTED_URN,
)

from ._asl import (
    CLAIM,
    MAX_DELIVERY_ATTEMPTS,
    MAX_EXECUTION_SECONDS,
    REPORT_STARTED,
    REVIEW_QUEUE,
    SQS_RETRY_ERRORS,
    TIMEOUT_ERRORS,
    TOKEN_HEADERS,
    catcher,
    check_seconds,
    claim_states,
    completion,
    context_states,
    delivery_states,
    envelope,
    placeholder,
    report_started_state,
    retrier,
)

AWAIT_REVIEW = "AwaitReview"
AWAIT_ESCALATED_REVIEW = "AwaitEscalatedReview"
CHECK_DECISION = "CheckDecision"
APPROVED = "Approved"
NOT_APPROVED = "NotApproved"
REJECTED = "Rejected"
TIMED_OUT = "TimedOut"


@dataclass(frozen=True)
class ManualReviewTimings:
    """How long ManualReview waits, in seconds.

    ``review_timeout_seconds`` for the first review, ``escalation_timeout_seconds`` for
    the escalated one (then the outcome is ``timed_out``), ``delivery_timeout_seconds``
    for the saga to acknowledge the outcome, retried ``delivery_max_attempts`` times.
    """

    review_timeout_seconds: int = 2 * 86400
    escalation_timeout_seconds: int = 86400
    delivery_timeout_seconds: int = 3600
    delivery_max_attempts: int = 5

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_seconds(owner, "review_timeout_seconds", self.review_timeout_seconds,
                      maximum=MAX_EXECUTION_SECONDS)
        check_seconds(owner, "escalation_timeout_seconds", self.escalation_timeout_seconds,
                      maximum=MAX_EXECUTION_SECONDS)
        check_seconds(owner, "delivery_timeout_seconds", self.delivery_timeout_seconds,
                      maximum=MAX_EXECUTION_SECONDS)
        check_seconds(owner, "delivery_max_attempts", self.delivery_max_attempts,
                      minimum=0, maximum=MAX_DELIVERY_ATTEMPTS)
        if self.worst_case_seconds > MAX_EXECUTION_SECONDS:
            raise ValueError(
                f"{owner}: review_timeout_seconds + escalation_timeout_seconds + "
                f"delivery_timeout_seconds × (delivery_max_attempts + 1) = "
                f"{self.worst_case_seconds} s exceeds a Standard execution's one year")

    @property
    def worst_case_seconds(self) -> int:
        """The longest an execution can run (both reviews and every delivery time out)."""
        return (self.review_timeout_seconds + self.escalation_timeout_seconds
                + self.delivery_timeout_seconds * (self.delivery_max_attempts + 1))


def _review_state(*, escalated: bool, timeout_seconds: int, on_timeout: str) -> dict[str, Any]:
    message = {
        "handoffId.$": "$.handoffId",
        "correlationId.$": "$.correlationId",
        "sagaType.$": "$.sagaType",
        "reason.$": "$.reason",
        "payload.$": "$.payload",
        "escalated": escalated,
        "executionArn.$": "$$.Execution.Id",
        "taskToken.$": "$$.Task.Token",
        "enteredAt.$": "$$.State.EnteredTime",
        "timeoutSeconds": timeout_seconds,
    }
    return {
        "Type": "Task",
        "Comment": ("Escalated review: the last chance before timed_out." if escalated
                    else "Hand the review to a person; wait for SendTaskSuccess/Failure."),
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {
            "QueueUrl": placeholder(REVIEW_QUEUE),
            "MessageBody": envelope(message_type=REVIEW_TASK_URN, message=message,
                                    headers=TOKEN_HEADERS),
            "MessageAttributes.$": "$.ctx.reviewAttributes",
        },
        "TimeoutSeconds": timeout_seconds,
        "ResultPath": "$.review",
        "Retry": [retrier(SQS_RETRY_ERRORS)],
        "Catch": [catcher([REVIEW_REJECTED_ERROR], REJECTED, "$.review"),
                  catcher(TIMEOUT_ERRORS, on_timeout, "$.review")],
        "Next": CHECK_DECISION,
    }


def manual_review_definition(timings: ManualReviewTimings = ManualReviewTimings()
                             ) -> dict[str, Any]:
    """The ManualReview state machine (ASL, JSONPath) with ``${ClaimTableName}`` and
    ``${ReviewQueueUrl}`` placeholders.

    Claim → report Started → review task (waitForTaskToken). SendTaskSuccess with
    ``{"decision": "approved", ...}`` approves; SendTaskFailure ``ReviewRejected``
    rejects (error and cause kept in the result); any other answer is not an approval.
    A timeout escalates once (``escalated: true``); a second timeout ends ``timed_out``.
    The outcome is delivered to the saga and the execution ends when it acknowledges.
    """
    states: dict[str, Any] = {}
    states.update(claim_states())
    states.update(context_states(REPORT_STARTED, {
        "startedAttributes": SUPERVISION_STARTED_URN,
        "completedAttributes": SUPERVISION_COMPLETED_URN,
        "reviewAttributes": REVIEW_TASK_URN}))
    states.update(report_started_state(AWAIT_REVIEW))
    states[AWAIT_REVIEW] = _review_state(
        escalated=False, timeout_seconds=timings.review_timeout_seconds,
        on_timeout=AWAIT_ESCALATED_REVIEW)
    states[AWAIT_ESCALATED_REVIEW] = _review_state(
        escalated=True, timeout_seconds=timings.escalation_timeout_seconds,
        on_timeout=TIMED_OUT)
    states[CHECK_DECISION] = {
        "Type": "Choice",
        "Comment": "SendTaskSuccess output: only {\"decision\": \"approved\"} approves.",
        "Choices": [
            {"Variable": "$.review.decision", "IsPresent": False, "Next": NOT_APPROVED},
            {"Variable": "$.review.decision", "StringEquals": "approved", "Next": APPROVED},
        ],
        "Default": NOT_APPROVED,
    }
    states[APPROVED] = completion("approved", "$.review")
    states[NOT_APPROVED] = completion("rejected", "$.review")
    states[REJECTED] = completion("rejected", {
        "decision": "rejected", "error.$": "$.review.Error", "cause.$": "$.review.Cause"})
    states[TIMED_OUT] = completion("timed_out", {
        "decision": "timed_out", "error.$": "$.review.Error",
        "reviewTimeoutSeconds": timings.review_timeout_seconds,
        "escalationTimeoutSeconds": timings.escalation_timeout_seconds})
    states.update(delivery_states(timeout_seconds=timings.delivery_timeout_seconds,
                                  max_attempts=timings.delivery_max_attempts))
    return {
        "Comment": "stepsaga ManualReview: a person approves or rejects a hand-off; one "
                   "escalation on timeout; the outcome goes back to the saga.",
        "StartAt": CLAIM,
        "States": states,
    }

