"""Extension cfn_change_set_execution: outputs after a change set; a failed one shows
as ``CREATE_FAILED``."""

from __future__ import annotations

from core_saga.emulator import Emulator

from ._cfn import deploy, outputs, unique


def test_change_set_execution(emulator: Emulator) -> None:
    cf = emulator.boto3_client("cloudformation")
    queue = unique("q")
    described = deploy(cf, unique("stack"), {
        "Description": "outputs after a change set",
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": queue}}},
        "Outputs": {"Url": {"Value": {"Ref": "Queue"}}}})
    assert described["StackStatus"] == "CREATE_COMPLETE"
    assert outputs(described)["Url"].endswith("/" + queue)
    assert described["Description"] == "outputs after a change set"
    broken = deploy(cf, unique("stack"), {"Resources": {"Machine": {
        "Type": "AWS::StepFunctions::StateMachine", "Properties": {
            "StateMachineName": unique("sm"), "RoleArn": "arn:aws:iam::123456789012:role/x",
            "DefinitionString": '{"StartAt": "Nowhere", "States": {}}'}}}})
    assert broken["StackStatus"] == "CREATE_FAILED"
    assert "Definition" in broken["StackStatusReason"]
