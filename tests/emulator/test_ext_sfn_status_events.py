"""Extension sfn_status_events: executions put "Step Functions Execution Status Change"
events on the default bus when they start and end (moto 5.2.5 sends none), so a rule on
them delivers to its targets — here the bridge's status rule shape: an SQS target whose
input transformer wraps the event in an envelope."""

from __future__ import annotations

import json
import time
from typing import Any

from bridge.contracts import (
    SupervisionExecutionChanged,
    status_event_input_template,
    status_event_pattern,
)
from core_saga.emulator.pytest_plugin import AwsScope
from core_saga.extension import decode_envelope

FAIL = {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Broken",
                                               "Cause": "on purpose"}}}
WAIT = {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 120, "End": True}}}
PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
REQUEST = {"handoffId": "h-1", "correlationId": "order-1", "sagaType": "OrderSaga",
           "workflow": "ManualReview"}


def _queue_with_status_rule(aws: AwsScope, machines: list[str], *,
                            pattern: dict[str, Any] | None = None) -> str:
    queue = aws.create_queue("status", dlq=False)
    events = aws.client("events")
    rule = aws.name("status")
    events.put_rule(Name=rule, EventPattern=json.dumps(
        pattern or status_event_pattern(machines)))
    events.put_targets(Rule=rule, Targets=[{"Id": "saga", "Arn": queue.arn,
                                            "InputTransformer": status_event_input_template()}])
    return queue.url


def _bodies(aws: AwsScope, url: str, wanted: int, timeout: float = 30.0) -> list[str]:
    sqs = aws.client("sqs")
    found: list[str] = []
    deadline = time.monotonic() + timeout
    while len(found) < wanted and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in got.get("Messages", []):
            found.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert len(found) >= wanted, found
    return found


def test_a_failed_execution_reports_its_error_and_cause(aws: AwsScope) -> None:
    machine = aws.create_state_machine("fails", FAIL)
    url = _queue_with_status_rule(aws, [machine])
    described = aws.run(machine, REQUEST)
    assert described["status"] == "FAILED"
    (body,) = _bodies(aws, url, 1)
    envelope = decode_envelope(body)
    message = envelope.message
    assert isinstance(message, SupervisionExecutionChanged)
    assert (message.status, message.error, message.cause) == ("FAILED", "Broken", "on purpose")
    assert (message.execution_arn, message.state_machine_arn) == (
        described["executionArn"], machine)
    assert (message.handoff_id, message.correlation_id) == ("h-1", "order-1")
    assert envelope.message_id == message.event_id and message.stopped_at is not None
    event = json.loads(body)["message"]
    assert (event["source"], event["detail-type"], event["resources"]) == (
        "aws.states", "Step Functions Execution Status Change", [described["executionArn"]])
    assert json.loads(event["detail"]["input"]) == REQUEST


def test_stop_execution_reports_aborted(aws: AwsScope) -> None:
    machine = aws.create_state_machine("waits", WAIT)
    url = _queue_with_status_rule(aws, [machine])
    sfn = aws.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps(REQUEST))["executionArn"]
    sfn.stop_execution(executionArn=arn)
    assert aws.emulator.wait_for_execution(arn, timeout=30)["status"] == "ABORTED"
    (body,) = _bodies(aws, url, 1)
    message = decode_envelope(body).message
    assert isinstance(message, SupervisionExecutionChanged)
    assert (message.status, message.execution_arn) == ("ABORTED", arn)


def test_every_start_and_end_is_reported(aws: AwsScope) -> None:
    machine = aws.create_state_machine("passes", PASS)
    url = _queue_with_status_rule(aws, [machine], pattern={
        "source": ["aws.states"], "detail": {"stateMachineArn": [machine]}})
    arn = aws.run(machine, REQUEST)["executionArn"]
    details = {d["status"]: d for d in (json.loads(b)["message"]["detail"]
                                        for b in _bodies(aws, url, 2))}
    assert sorted(details) == ["RUNNING", "SUCCEEDED"]
    assert {d["executionArn"] for d in details.values()} == {arn}
    assert details["RUNNING"]["stopDate"] is None
    assert json.loads(details["SUCCEEDED"]["output"]) == REQUEST


def test_the_rule_pattern_keeps_other_machines_and_statuses_out(aws: AwsScope) -> None:
    ours = aws.create_state_machine("ours", PASS)
    other = aws.create_state_machine("other", FAIL)
    url = _queue_with_status_rule(aws, [ours])
    aws.run(ours, REQUEST)  # SUCCEEDED: not a status the rule takes
    aws.run(other, REQUEST)  # FAILED, another machine
    got = aws.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                            WaitTimeSeconds=1).get("Messages", [])
    assert got == []
