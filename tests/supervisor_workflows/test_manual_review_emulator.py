"""ManualReview on the emulator (moto 5.2.5 executing the rendered ASL): approve, reject,
timeout → escalation → timed_out, a duplicate hand-off, delivery retried until the saga
acknowledges."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from bridge.contracts import (
    REVIEW_REJECTED_ERROR,
    REVIEW_TASK_URN,
    SUPERVISION_COMPLETED_URN,
    SUPERVISION_STARTED_URN,
    SupervisionRequested,
)
from supervisor_workflows import ManualReviewTimings

from .conftest import MakeSupervision, Received, Supervision

pytestmark = pytest.mark.emulator

FAST = ManualReviewTimings(review_timeout_seconds=3, escalation_timeout_seconds=2,
                           delivery_timeout_seconds=4, delivery_max_attempts=1)
GONE = ("InvalidToken", "TaskTimedOut")
"""What a late answer gets: InvalidToken here, TaskTimedOut on AWS — 'the task is gone'."""


def answer_late(sv: Supervision, token: str) -> str | None:
    """SendTaskSuccess for a task that timed out: the error code, or None when accepted.

    AWS answers TaskTimedOut. moto 5.2.5 answers InvalidToken once the execution has
    ended, but accepts (and ignores) it while the execution still runs — with the
    sfn_retry_task_token extension it answers InvalidToken then too."""
    try:
        sv.sfn.send_task_success(taskToken=token, output=json.dumps({"decision": "approved"}))
    except ClientError as error:
        code: str = error.response["Error"]["Code"]
        return code
    return None


def review_task(sv: Supervision, request: SupervisionRequested, *,
                escalated: bool) -> Received:
    task = sv.receive(sv.review_queue)
    sv.check_envelope(task, REVIEW_TASK_URN, request)
    assert task.message["escalated"] is escalated
    return task


def test_approve(make_supervision: MakeSupervision) -> None:
    sv: Supervision = make_supervision("ManualReview", FAST)
    request = sv.request()
    arn = sv.start(request)

    started = sv.receive_reply(SUPERVISION_STARTED_URN, request)
    assert started.message["executionArn"] == arn
    assert started.message["handoffId"] == request.handoff_id
    assert "taskToken" not in started.envelope["headers"]

    task = review_task(sv, request, escalated=False)
    assert task.message["executionArn"] == arn
    assert task.message["payload"] == request.payload
    sv.sfn.send_task_success(taskToken=task.token, output=json.dumps(
        {"decision": "approved", "reviewer": "ann", "comment": "known customer"}))

    completed = sv.receive_reply(SUPERVISION_COMPLETED_URN, request)
    assert completed.message["outcome"] == "approved"
    assert completed.message["result"] == {"decision": "approved", "reviewer": "ann",
                                           "comment": "known customer"}
    assert completed.message["executionArn"] == arn
    assert sv.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"  # until acked
    sv.acknowledge(completed)

    done = sv.wait_until_done(arn)
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == {"handoffId": request.handoff_id,
                                          "outcome": "approved",
                                          "result": completed.message["result"]}
    assert sv.entered(arn) == ["ClaimHandoff", "HasTraceparent", "WithTraceparent",
                               "ReportStarted", "AwaitReview", "CheckDecision", "Approved",
                               "DeliverOutcome", "Delivered"]
    claim = sv.dynamodb.get_item(TableName=sv.table,
                                 Key={"handoffId": {"S": request.handoff_id}})["Item"]
    assert claim["executionArn"]["S"] == arn
    sv.assert_empty(sv.review_queue, wait=0)


def test_an_unnamed_execution_reports_its_own_arn(make_supervision: MakeSupervision) -> None:
    """EventBridge starts executions without a name (moto 5.2.5 named them ``None``; the
    emulator's sfn_execution_name extension generates one, as AWS does)."""
    sv: Supervision = make_supervision("ManualReview", FAST)
    request = sv.request()
    arn = sv.start(request, name="")
    assert not arn.endswith(":None")
    started = sv.receive_reply(SUPERVISION_STARTED_URN, request)
    assert started.message["executionArn"] == arn
    assert started.message["startedAt"].endswith("Z")
    task = review_task(sv, request, escalated=False)
    sv.sfn.send_task_success(taskToken=task.token, output=json.dumps({"decision": "approved"}))
    sv.acknowledge(sv.receive_reply(SUPERVISION_COMPLETED_URN, request))
    assert sv.wait_until_done(arn)["status"] == "SUCCEEDED"


def test_reject_without_traceparent(make_supervision: MakeSupervision) -> None:
    sv: Supervision = make_supervision("ManualReview", FAST)
    request = sv.request(traceparent=None)
    arn = sv.start(request)
    started = sv.receive_reply(SUPERVISION_STARTED_URN, request)  # no traceparent anywhere
    assert started.message["traceparent"] is None
    task = review_task(sv, request, escalated=False)
    assert set(task.envelope["headers"]) == {"taskToken"}
    sv.sfn.send_task_failure(taskToken=task.token, error=REVIEW_REJECTED_ERROR,
                             cause="stolen card")

    completed = sv.receive_reply(SUPERVISION_COMPLETED_URN, request)
    assert completed.message["outcome"] == "rejected"
    assert completed.message["result"]["decision"] == "rejected"
    assert completed.message["result"]["error"] == REVIEW_REJECTED_ERROR
    # moto 5.2.5 drops the cause; the emulator's sfn_task_failure_cause extension keeps it.
    assert completed.message["result"]["cause"] == "stolen card"
    sv.acknowledge(completed)
    assert sv.wait_until_done(arn)["status"] == "SUCCEEDED"
    entered = sv.entered(arn)
    assert entered[-4:] == ["AwaitReview", "Rejected", "DeliverOutcome", "Delivered"]
    assert "WithoutTraceparent" in entered
    failed = sv.events(arn, "TaskFailed")
    assert [e["taskFailedEventDetails"]["error"] for e in failed] == [REVIEW_REJECTED_ERROR]


def test_an_answer_other_than_approved_does_not_approve(make_supervision: MakeSupervision) -> None:
    sv: Supervision = make_supervision("ManualReview", FAST)
    request = sv.request()
    arn = sv.start(request)
    sv.receive_reply(SUPERVISION_STARTED_URN, request)
    task = review_task(sv, request, escalated=False)
    sv.sfn.send_task_success(taskToken=task.token, output=json.dumps({"looks": "fine"}))
    completed = sv.receive_reply(SUPERVISION_COMPLETED_URN, request)
    assert completed.message["outcome"] == "rejected"
    assert completed.message["result"] == {"looks": "fine"}
    sv.acknowledge(completed)
    assert sv.wait_until_done(arn)["status"] == "SUCCEEDED"
    assert "NotApproved" in sv.entered(arn)


def test_timeout_escalates_once_then_times_out(make_supervision: MakeSupervision) -> None:
    sv: Supervision = make_supervision("ManualReview", FAST)
    request = sv.request()
    arn = sv.start(request)
    sv.receive_reply(SUPERVISION_STARTED_URN, request)

    first = review_task(sv, request, escalated=False)  # nobody answers in 3 s
    second = review_task(sv, request, escalated=True)  # nobody answers in 2 s
    assert second.token != first.token
    assert answer_late(sv, first.token) in GONE  # the first review is gone

    completed = sv.receive_reply(SUPERVISION_COMPLETED_URN, request)
    assert completed.message["outcome"] == "timed_out"
    assert completed.message["result"]["reviewTimeoutSeconds"] == 3
    assert completed.message["result"]["escalationTimeoutSeconds"] == 2
    assert completed.message["result"]["error"] == "States.Timeout"
    sv.acknowledge(completed)
    assert sv.wait_until_done(arn)["status"] == "SUCCEEDED"
    assert sv.entered(arn)[-5:] == ["AwaitReview", "AwaitEscalatedReview", "TimedOut",
                                    "DeliverOutcome", "Delivered"]
    assert len(sv.events(arn, "TaskTimedOut")) == 2
    sv.assert_empty(sv.review_queue, wait=0)  # escalated once, no third task


def test_escalated_review_can_approve(make_supervision: MakeSupervision) -> None:
    sv: Supervision = make_supervision("ManualReview", FAST)
    request = sv.request()
    arn = sv.start(request)
    sv.receive_reply(SUPERVISION_STARTED_URN, request)
    review_task(sv, request, escalated=False)
    second = review_task(sv, request, escalated=True)
    sv.sfn.send_task_success(taskToken=second.token,
                             output=json.dumps({"decision": "approved", "reviewer": "boss"}))
    completed = sv.receive_reply(SUPERVISION_COMPLETED_URN, request)
    assert completed.message["outcome"] == "approved"
    sv.acknowledge(completed)
    assert sv.wait_until_done(arn)["status"] == "SUCCEEDED"


def test_a_duplicate_handoff_ends_at_once_and_raises_one_review(
        make_supervision: MakeSupervision) -> None:
    sv: Supervision = make_supervision("ManualReview", FAST)
    request = sv.request()
    first = sv.start(request, name=f"first-{uuid.uuid4().hex[:8]}")
    sv.receive_reply(SUPERVISION_STARTED_URN, request)  # the first one has claimed it
    duplicate = sv.start(request, name=f"dup-{uuid.uuid4().hex[:8]}")

    done = sv.wait_until_done(duplicate, timeout=15)
    assert done["status"] == "SUCCEEDED"
    assert sv.entered(duplicate) == ["ClaimHandoff", "AlreadyClaimed"]
    failed = sv.events(duplicate, "TaskFailed")
    assert [e["taskFailedEventDetails"]["error"] for e in failed] == [
        "DynamoDB.ConditionalCheckFailedException"]

    task = review_task(sv, request, escalated=False)
    assert task.message["executionArn"] == first
    sv.assert_empty(sv.review_queue, wait=1)  # one review task only
    sv.sfn.send_task_success(taskToken=task.token, output=json.dumps({"decision": "approved"}))
    completed = sv.receive_reply(SUPERVISION_COMPLETED_URN, request)
    sv.acknowledge(completed)
    assert sv.wait_until_done(first)["status"] == "SUCCEEDED"
    sv.assert_empty(sv.reply_queue, wait=0)  # one Started, one Completed


def test_delivery_is_repeated_until_the_saga_acknowledges(
        make_supervision: MakeSupervision) -> None:
    sv: Supervision = make_supervision("ManualReview", FAST)
    request = sv.request()
    arn = sv.start(request)
    sv.receive_reply(SUPERVISION_STARTED_URN, request)
    task = review_task(sv, request, escalated=False)
    sv.sfn.send_task_success(taskToken=task.token, output=json.dumps({"decision": "approved"}))

    lost = sv.receive_reply(SUPERVISION_COMPLETED_URN, request)  # the saga crashes
    again = sv.receive_reply(SUPERVISION_COMPLETED_URN, request)  # after 4 s: redelivered
    assert again.envelope["messageId"] != lost.envelope["messageId"]  # a fresh UUID
    assert again.token != lost.token  # each attempt has its own token (AWS; moto: extension)
    assert again.message["outcome"] == lost.message["outcome"] == "approved"
    assert answer_late(sv, lost.token) in GONE  # too late: that task is gone
    sv.acknowledge(again)
    assert sv.wait_until_done(arn)["status"] == "SUCCEEDED"
    assert len(sv.events(arn, "TaskTimedOut")) == 1


def test_an_unacknowledged_outcome_fails_the_execution_after_the_retries(
        make_supervision: MakeSupervision) -> None:
    sv: Supervision = make_supervision("ManualReview", FAST)
    request = sv.request()
    arn = sv.start(request)
    sv.receive_reply(SUPERVISION_STARTED_URN, request)
    task = review_task(sv, request, escalated=False)
    sv.sfn.send_task_failure(taskToken=task.token, error=REVIEW_REJECTED_ERROR)
    for _ in range(FAST.delivery_max_attempts + 1):
        sv.receive_reply(SUPERVISION_COMPLETED_URN, request)  # never acknowledged
    done = sv.wait_until_done(arn, timeout=20)
    assert done["status"] == "FAILED"
    assert done.get("error") == "SupervisionNotDelivered"
    assert sv.entered(arn)[-1] == "OutcomeNotDelivered"
