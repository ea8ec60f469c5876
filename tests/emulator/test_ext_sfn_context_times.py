"""Extension sfn_context_times: $$.Execution.StartTime is a string (moto 5.2.5 keeps a
datetime and DescribeExecution answers HTTP 500) and both times read as AWS writes them."""

from __future__ import annotations

import datetime
import json
import re

from core_saga.emulator.pytest_plugin import AwsScope

AWS_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def test_context_times_are_aws_timestamps(aws: AwsScope) -> None:
    machine = aws.create_state_machine("times", {"StartAt": "P", "States": {"P": {
        "Type": "Pass", "Parameters": {"started.$": "$$.Execution.StartTime",
                                       "entered.$": "$$.State.EnteredTime",
                                       "context.$": "$$"}, "End": True}}})
    described = aws.run(machine, {})
    assert described["status"] == "SUCCEEDED"
    got = json.loads(described["output"])
    assert re.fullmatch(AWS_TIME, got["started"]) and re.fullmatch(AWS_TIME, got["entered"])
    assert got["context"]["Execution"]["StartTime"] == got["started"]
    entered = datetime.datetime.fromisoformat(got["entered"])
    now = datetime.datetime.now(datetime.UTC)
    assert abs((now - entered).total_seconds()) < 30
