"""Extension events_put_faults: PutEvents entries fail on request (a test tool)."""

from __future__ import annotations

import json
import time

from core_saga.emulator.pytest_plugin import AwsScope


def _entry(bus: str, n: int) -> dict[str, str]:
    return {"Source": "test", "DetailType": "Thing", "Detail": json.dumps({"n": n}),
            "EventBusName": bus}


def test_the_next_entries_fail_with_the_code_and_the_rest_are_routed(aws: AwsScope) -> None:
    bus = aws.name("faults")
    aws.create_bus("faults")
    queue = aws.create_queue("faults-target", dlq=False)
    events = aws.client("events")
    events.put_rule(Name=aws.name("all"), EventBusName=bus,
                    EventPattern=json.dumps({"source": ["test"]}))
    events.put_targets(Rule=aws.name("all"), EventBusName=bus,
                       Targets=[{"Id": "q", "Arn": queue.arn}])
    aws.emulator.fail_put_events(2, error_code="InternalFailure", bus=bus)
    answer = events.put_events(Entries=[_entry(bus, n) for n in range(4)])
    assert answer["FailedEntryCount"] == 2
    codes = [e.get("ErrorCode") for e in answer["Entries"]]
    assert codes == ["InternalFailure", "InternalFailure", None, None]
    assert all("EventId" in e for e in answer["Entries"][2:])
    got = aws.client("sqs").receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10,
                                            WaitTimeSeconds=1)["Messages"]
    assert sorted(json.loads(m["Body"])["detail"]["n"] for m in got) == [2, 3]
    again = events.put_events(Entries=[_entry(bus, 9)])
    assert again["FailedEntryCount"] == 0  # the budget is spent


def test_a_fault_for_another_bus_leaves_this_one_alone(aws: AwsScope) -> None:
    bus = aws.name("calm")
    aws.create_bus("calm")
    aws.emulator.fail_put_events(1, bus=aws.name("elsewhere"))
    answer = aws.client("events").put_events(Entries=[_entry(bus, 1)])
    assert answer["FailedEntryCount"] == 0
    aws.client("events").put_events(Entries=[_entry(aws.name("elsewhere"), 1)])  # spend it


def test_failures_no_entry_met_in_time_lapse(aws: AwsScope) -> None:
    """Injected failures are momentary: they do not wait for the next publisher."""
    bus = aws.name("lapse")
    aws.create_bus("lapse")
    events = aws.client("events")
    aws.emulator.fail_put_events(3, bus=bus, seconds=0.3)
    time.sleep(0.5)
    assert events.put_events(Entries=[_entry(bus, 1)])["FailedEntryCount"] == 0
    aws.emulator.fail_put_events(1, bus=bus, seconds=30)
    assert events.put_events(Entries=[_entry(bus, 2)])["FailedEntryCount"] == 1
