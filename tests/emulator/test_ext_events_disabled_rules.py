"""Extension events_disabled_rules: a disabled rule delivers nothing until it is enabled
again (moto 5.2.5 keeps delivering)."""

from __future__ import annotations

import json

from core_saga.emulator.pytest_plugin import AwsScope

from ._helpers import put_event


def test_a_disabled_rule_delivers_nothing_until_enabled(aws: AwsScope) -> None:
    bus = aws.name("bus")
    aws.create_bus("bus")
    queue = aws.create_queue("target", dlq=False)
    events, sqs = aws.client("events"), aws.client("sqs")
    rule = aws.name("r")
    events.put_rule(Name=rule, EventBusName=bus,
                    EventPattern=json.dumps({"detail-type": ["Ping"]}))
    events.put_targets(Rule=rule, EventBusName=bus,
                       Targets=[{"Id": "q", "Arn": queue.arn, "InputPath": "$.detail"}])
    events.disable_rule(Name=rule, EventBusName=bus)
    assert events.describe_rule(Name=rule, EventBusName=bus)["State"] == "DISABLED"
    put_event(aws, bus, "Ping", {"n": 1})
    assert sqs.receive_message(QueueUrl=queue.url, WaitTimeSeconds=1).get("Messages") is None
    events.enable_rule(Name=rule, EventBusName=bus)
    put_event(aws, bus, "Ping", {"n": 2})
    got = sqs.receive_message(QueueUrl=queue.url, WaitTimeSeconds=2)["Messages"]
    assert [json.loads(m["Body"]) for m in got] == [{"n": 2}]
