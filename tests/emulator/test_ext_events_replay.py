"""Extension events_replay: a replay sends the archived events of its time window only,
shaped by the targets' input settings (moto 5.2.5: every event, bare)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from core_saga.emulator.pytest_plugin import AwsScope

TEN, NOON = datetime(2026, 1, 5, 10, tzinfo=UTC), datetime(2026, 1, 5, 12, tzinfo=UTC)


def test_a_replay_sends_the_window_shaped_as_the_target_says(aws: AwsScope) -> None:
    bus = aws.name("bus")
    bus_arn = aws.create_bus("bus")
    queue = aws.create_queue("target", dlq=False)
    events, sqs = aws.client("events"), aws.client("sqs")
    archive = events.create_archive(ArchiveName=aws.name("archive"), EventSourceArn=bus_arn,
                                    EventPattern=json.dumps({"source": ["stepsaga.t"]}))
    rule = aws.name("r")
    events.put_rule(Name=rule, EventBusName=bus, State="DISABLED",
                    EventPattern=json.dumps({"source": ["stepsaga.t"]}))
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{
        "Id": "q", "Arn": queue.arn, "InputTransformer": {
            "InputPathsMap": {"n": "$.detail.n"}, "InputTemplate": '{"got": <n>}'}}])
    for n, at in ((1, TEN), (2, NOON)):
        events.put_events(Entries=[{"EventBusName": bus, "Source": "stepsaga.t",
                                    "DetailType": "T", "Detail": json.dumps({"n": n}),
                                    "Time": at}])
    assert sqs.receive_message(QueueUrl=queue.url, WaitTimeSeconds=1).get("Messages") is None
    events.enable_rule(Name=rule, EventBusName=bus)
    events.start_replay(ReplayName=aws.name("replay"), EventSourceArn=archive["ArchiveArn"],
                        EventStartTime=datetime(2026, 1, 5, 9, tzinfo=UTC),
                        EventEndTime=datetime(2026, 1, 5, 11, tzinfo=UTC),
                        Destination={"Arn": bus_arn})
    got = sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10,
                              WaitTimeSeconds=2).get("Messages", [])
    assert [json.loads(m["Body"]) for m in got] == [{"got": 1}]
    assert events.describe_archive(ArchiveName=aws.name("archive"))["EventCount"] == 2
