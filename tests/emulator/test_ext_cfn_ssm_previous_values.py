"""Extension cfn_ssm_previous_values: ``UsePreviousValue`` of an SSM-typed parameter
(CDK's BootstrapVersion) on an update."""

from __future__ import annotations

import uuid
from typing import Any

from core_saga.emulator import Emulator

from ._cfn import deploy, outputs, unique


def test_previous_ssm_parameter_values(emulator: Emulator) -> None:
    cf = emulator.boto3_client("cloudformation")
    name = f"/cdk-bootstrap/{uuid.uuid4().hex[:8]}/version"
    emulator.boto3_client("ssm").put_parameter(Name=name, Value="30", Type="String")
    stack = unique("stack")

    def template(queue: str) -> dict[str, Any]:
        return {"Parameters": {"BootstrapVersion": {
                    "Type": "AWS::SSM::Parameter::Value<String>", "Default": name}},
                "Resources": {"Queue": {"Type": "AWS::SQS::Queue",
                                        "Properties": {"QueueName": queue}}},
                "Outputs": {"Version": {"Value": {"Ref": "BootstrapVersion"}}}}

    assert outputs(deploy(cf, stack, template(unique("q"))))["Version"] == "30"
    updated = deploy(cf, stack, template(unique("q")), parameters=[
        {"ParameterKey": "BootstrapVersion", "UsePreviousValue": True}])
    assert updated["StackStatus"] == "UPDATE_COMPLETE", updated.get("StackStatusReason")
    assert outputs(updated)["Version"] == "30"
