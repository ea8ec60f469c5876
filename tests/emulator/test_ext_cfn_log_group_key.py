"""Extension cfn_log_group_key: a log group made by CloudFormation keeps its KmsKeyId,
on create and update (moto 5.2.5 drops it)."""

from __future__ import annotations

from typing import Any

from core_saga.emulator import Emulator

from ._cfn import deploy, unique


def test_the_key_is_set_and_updated(emulator: Emulator) -> None:
    cf, logs = emulator.boto3_client("cloudformation"), emulator.boto3_client("logs")
    kms = emulator.boto3_client("kms")
    first, second = (kms.create_key()["KeyMetadata"]["Arn"] for _ in range(2))
    stack, group = unique("stack"), f"/x/{unique('g')}"

    def template(key: str) -> dict[str, Any]:
        return {"Resources": {"Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": group, "RetentionInDays": 7, "KmsKeyId": key}}}}

    deploy(cf, stack, template(first))
    [found] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert found["kmsKeyId"] == first
    assert deploy(cf, stack, template(second))["StackStatus"] == "UPDATE_COMPLETE"
    [found] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert found["kmsKeyId"] == second
