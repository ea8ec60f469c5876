"""Small helpers shared by the emulator tests."""

from __future__ import annotations

import json
import time
from typing import Any

from core_saga.emulator.pytest_plugin import AwsScope

PASS_ECHO: dict[str, Any] = {"StartAt": "Echo", "States": {"Echo": {
    "Type": "Pass", "Parameters": {"got.$": "$", "ran.$": "States.Format('ran {}', $$.State.Name)"},
    "End": True}}}
"""Outputs ``{"got": <its input>, "ran": "ran Echo"}`` — the intrinsic proves real ASL ran."""


def executions(aws: AwsScope, state_machine_arn: str, *, expect: int = 1,
               timeout: float = 10.0) -> list[dict[str, Any]]:
    """Wait for `expect` executions of the state machine to end; DescribeExecution of each,
    oldest first."""
    sfn = aws.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        listed = sfn.list_executions(stateMachineArn=state_machine_arn)["executions"]
        if len(listed) >= expect or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(listed) == expect, listed
    described = [aws.emulator.wait_for_execution(e["executionArn"], timeout=timeout)
                 for e in listed]
    return sorted(described, key=lambda d: d["startDate"])


def output(described: dict[str, Any]) -> Any:
    """The execution's output, decoded (it must have succeeded)."""
    assert described["status"] == "SUCCEEDED", described
    return json.loads(described["output"])


def put_event(aws: AwsScope, bus: str, detail_type: str, detail: dict[str, Any],
              source: str = "stepsaga.order") -> str:
    """PutEvents of one entry; its event id (the call must succeed)."""
    answer = aws.client("events").put_events(Entries=[{
        "EventBusName": bus, "Source": source, "DetailType": detail_type,
        "Detail": json.dumps(detail)}])
    assert answer["FailedEntryCount"] == 0, answer
    event_id: str = answer["Entries"][0]["EventId"]
    return event_id
