"""Extension sfn_execution_name: StartExecution without a name gets a UUID (moto 5.2.5
names it "None", and a second unnamed start fails)."""

from __future__ import annotations

import uuid

from core_saga.emulator.pytest_plugin import AwsScope

from ._helpers import PASS_ECHO


def test_unnamed_executions_get_distinct_uuid_names(aws: AwsScope) -> None:
    machine = aws.create_state_machine("m", PASS_ECHO)
    sfn = aws.client("stepfunctions")
    first = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    second = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    assert first != second
    for arn in (first, second):
        uuid.UUID(arn.rsplit(":", 1)[1])
        assert aws.emulator.wait_for_execution(arn)["status"] == "SUCCEEDED"
    named = sfn.start_execution(stateMachineArn=machine, name="given")["executionArn"]
    assert named.endswith(":given")
