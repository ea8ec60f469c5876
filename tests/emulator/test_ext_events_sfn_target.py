"""Extension events_sfn_target: an EventBridge rule starts a state machine (moto 5.2.5
answers PutEvents with HTTP 500 for such a target)."""

from __future__ import annotations

import json
import re
from typing import Any

from core_saga.emulator.pytest_plugin import AwsScope

from ._helpers import PASS_ECHO, executions, output, put_event

PATTERN = {"detail-type": ["SupervisionRequested"], "detail": {"workflow": ["ManualReview"]}}
DETAIL = {"schemaVersion": 1, "workflow": "ManualReview", "handoffId": "h-1",
          "correlationId": "o-1", "payload": {"amount": 120}}


def _rule(aws: AwsScope, **target: Any) -> tuple[str, str]:
    """A bus with the ManualReview rule targeting a fresh echo state machine."""
    bus = aws.name("bus")
    aws.create_bus("bus")
    machine = aws.create_state_machine("review", PASS_ECHO)
    events = aws.client("events")
    events.put_rule(Name=aws.name("review"), EventBusName=bus,
                    EventPattern=json.dumps(PATTERN))
    events.put_targets(Rule=aws.name("review"), EventBusName=bus, Targets=[{
        "Id": "review", "Arn": machine, "RoleArn": "arn:aws:iam::123456789012:role/events",
        **target}])
    return bus, machine


def test_input_path_starts_the_state_machine_with_the_detail(aws: AwsScope) -> None:
    bus, machine = _rule(aws, InputPath="$.detail")
    put_event(aws, bus, "SupervisionRequested", DETAIL)
    put_event(aws, bus, "SupervisionRequested", {**DETAIL, "workflow": "SlowShipping"})
    put_event(aws, bus, "SupervisionStarted", DETAIL)
    [run] = executions(aws, machine, expect=1)
    assert output(run) == {"got": DETAIL, "ran": "ran Echo"}
    assert json.loads(run["input"]) == DETAIL


def test_without_input_settings_the_whole_event_is_the_input(aws: AwsScope) -> None:
    bus, machine = _rule(aws)
    event_id = put_event(aws, bus, "SupervisionRequested", DETAIL)
    event = output(executions(aws, machine)[0])["got"]
    assert event["id"] == event_id and event["detail"] == DETAIL
    assert event["detail-type"] == "SupervisionRequested"
    assert event["source"] == "stepsaga.order" and event["version"] == "0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    assert "ingestion-time" not in event


def test_input_is_a_constant(aws: AwsScope) -> None:
    bus, machine = _rule(aws, Input=json.dumps({"fixed": True}))
    put_event(aws, bus, "SupervisionRequested", DETAIL)
    assert output(executions(aws, machine)[0])["got"] == {"fixed": True}


def test_input_transformer_fills_the_template(aws: AwsScope) -> None:
    template = ('{"handoff": <h>, "amount": <amount>, "note": "<h> from <src>", '
                '"missing": <nothing>, "rule": "<aws.events.rule-name>"}')
    bus, machine = _rule(aws, InputTransformer={
        "InputPathsMap": {"h": "$.detail.handoffId", "amount": "$.detail.payload.amount",
                          "src": "$.source", "nothing": "$.detail.absent"},
        "InputTemplate": template})
    put_event(aws, bus, "SupervisionRequested", DETAIL)
    assert output(executions(aws, machine)[0])["got"] == {
        "handoff": "h-1", "amount": 120, "note": "h-1 from stepsaga.order", "missing": None,
        "rule": aws.name("review")}


def test_one_event_starts_one_execution_per_event_and_sqs_targets_still_work(
        aws: AwsScope) -> None:
    bus, machine = _rule(aws, InputPath="$.detail")
    queue = aws.create_queue("audit", dlq=False)
    aws.client("events").put_targets(Rule=aws.name("review"), EventBusName=bus, Targets=[
        {"Id": "audit", "Arn": queue.arn}])
    put_event(aws, bus, "SupervisionRequested", DETAIL)
    put_event(aws, bus, "SupervisionRequested", {**DETAIL, "handoffId": "h-2"})
    runs = executions(aws, machine, expect=2)
    assert sorted(output(r)["got"]["handoffId"] for r in runs) == ["h-1", "h-2"]
    assert len({r["executionArn"] for r in runs}) == 2
    got = aws.client("sqs").receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10,
                                            WaitTimeSeconds=1)["Messages"]
    assert len(got) == 2 and json.loads(got[0]["Body"])["detail-type"] == "SupervisionRequested"


def test_a_missing_state_machine_does_not_fail_put_events(aws: AwsScope) -> None:
    bus = aws.name("bus")
    aws.create_bus("bus")
    events = aws.client("events")
    events.put_rule(Name=aws.name("r"), EventBusName=bus, EventPattern=json.dumps(PATTERN))
    events.put_targets(Rule=aws.name("r"), EventBusName=bus, Targets=[{
        "Id": "gone", "Arn": "arn:aws:states:us-east-1:123456789012:stateMachine:nope"}])
    put_event(aws, bus, "SupervisionRequested", DETAIL)  # answers, as AWS does
