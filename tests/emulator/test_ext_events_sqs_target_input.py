"""Extension events_sqs_target_input: Input, InputPath and InputTransformer on SQS targets
(moto 5.2.5 ignores the first two and breaks on AWS-style templates)."""

from __future__ import annotations

import json
from typing import Any

from core_saga.emulator.pytest_plugin import AwsScope

from ._helpers import put_event

DETAIL = {"handoffId": "h-1", "executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:e"}


def _bodies(aws: AwsScope, **target: Any) -> list[str]:
    bus = aws.name("bus")
    aws.create_bus("bus")
    queue = aws.create_queue("saga", dlq=False)
    events = aws.client("events")
    events.put_rule(Name=aws.name("r"), EventBusName=bus,
                    EventPattern=json.dumps({"detail-type": ["SupervisionStarted"]}))
    events.put_targets(Rule=aws.name("r"), EventBusName=bus,
                       Targets=[{"Id": "q", "Arn": queue.arn, **target}])
    put_event(aws, bus, "SupervisionStarted", DETAIL)
    got = aws.client("sqs").receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10,
                                            WaitTimeSeconds=1).get("Messages", [])
    return [m["Body"] for m in got]


def test_input_path(aws: AwsScope) -> None:
    assert [json.loads(b) for b in _bodies(aws, InputPath="$.detail")] == [DETAIL]


def test_input_constant_is_sent_verbatim(aws: AwsScope) -> None:
    assert _bodies(aws, Input='{"kind": "fixed"}') == ['{"kind": "fixed"}']


def test_input_transformer_quotes_strings_as_aws_does(aws: AwsScope) -> None:
    bodies = _bodies(aws, InputTransformer={
        "InputPathsMap": {"h": "$.detail.handoffId", "arn": "$.detail.executionArn"},
        "InputTemplate": '{"messageType": "urn:x", "message": {"handoffId": <h>, '
                         '"executionArn": <arn>}}'})
    assert [json.loads(b) for b in bodies] == [
        {"messageType": "urn:x", "message": DETAIL}]


def test_input_transformer_plain_text(aws: AwsScope) -> None:
    bodies = _bodies(aws, InputTransformer={"InputPathsMap": {"h": "$.detail.handoffId"},
                                            "InputTemplate": "hand-off <h> started"})
    assert bodies == ["hand-off h-1 started"]


def test_without_input_settings_moto_sends_the_whole_event(aws: AwsScope) -> None:
    [body] = _bodies(aws)
    assert json.loads(body)["detail"] == DETAIL
