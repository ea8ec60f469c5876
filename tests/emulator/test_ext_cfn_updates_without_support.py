"""Extension cfn_updates_without_support: a log group's retention updates in place and
a table without an update model is kept."""

from __future__ import annotations

import uuid
from typing import Any

from core_saga.emulator import Emulator

from ._cfn import deploy, outputs, unique


def test_updates_without_support(emulator: Emulator) -> None:
    cf = emulator.boto3_client("cloudformation")
    logs = emulator.boto3_client("logs")
    stack, group = unique("stack"), f"/x/{uuid.uuid4().hex[:8]}"

    def template(days: int) -> dict[str, Any]:
        return {"Resources": {
            "Logs": {"Type": "AWS::Logs::LogGroup",
                     "Properties": {"LogGroupName": group, "RetentionInDays": days}},
            "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {
                "TableName": group.replace("/", ""), "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
                "Tags": [{"Key": "days", "Value": str(days)}]}}},
            "Outputs": {"Arn": {"Value": {"Fn::GetAtt": ["Logs", "Arn"]}},
                        "Table": {"Value": {"Ref": "Table"}}}}

    deploy(cf, stack, template(30))
    updated = deploy(cf, stack, template(60))
    assert updated["StackStatus"] == "UPDATE_COMPLETE", updated.get("StackStatusReason")
    assert outputs(updated)["Arn"].endswith(group)
    assert outputs(updated)["Table"] == group.replace("/", "")
    [found] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert found["retentionInDays"] == 60
