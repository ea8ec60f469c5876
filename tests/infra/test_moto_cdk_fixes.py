"""Smoke tests of tests/support/moto_cdk_fixes.py: one per fix, each through
CloudFormation change sets (how the CDK CLI deploys) on a server that loads the fixes.
If moto is upgraded, these show at once which fix broke or is no longer needed."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import moto_cdk_fixes

pytestmark = pytest.mark.emulator


def deploy(cf: Any, stack: str, template: dict[str, Any], *,
           parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Create or update `stack` through a change set, as the CDK CLI does; the stack
    as DescribeStacks shows it afterwards."""
    try:
        cf.describe_stacks(StackName=stack)
        kind = "UPDATE"
    except ClientError:
        kind = "CREATE"
    name = f"cs-{uuid.uuid4().hex[:8]}"
    cf.create_change_set(StackName=stack, ChangeSetName=name, ChangeSetType=kind,
                         TemplateBody=json.dumps(template), Parameters=parameters or [],
                         Capabilities=["CAPABILITY_IAM"])
    cf.execute_change_set(StackName=stack, ChangeSetName=name)
    described: dict[str, Any] = cf.describe_stacks(StackName=stack)["Stacks"][0]
    return described


def outputs(described: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def unique(base: str) -> str:
    return f"{base}-{uuid.uuid4().hex[:8]}"


def test_all_fixes_are_listed() -> None:
    assert [f.__name__ for f in moto_cdk_fixes.FIXES] == [
        "event_bus_ref", "state_machines_from_cloudformation", "change_set_execution",
        "missing_change_sets", "previous_ssm_parameter_values", "updates_without_support",
        "sqs_queue_policies"]
    for fix in moto_cdk_fixes.FIXES:
        doc = fix.__doc__ or ""
        assert "The gap" in doc and "The fix" in doc, fix.__name__


def test_substitute_definition() -> None:
    text = '{"A": "${Table}", "B": "${Other}", "C": "$.path"}'
    assert moto_cdk_fixes.substitute_definition(text, {"Table": "t1"}) == (
        '{"A": "t1", "B": "${Other}", "C": "$.path"}')


def test_event_bus_ref(cdk_emulator: Any) -> None:
    cf = cdk_emulator.boto3_client("cloudformation")
    bus = unique("bus")
    described = deploy(cf, unique("stack"), {"Resources": {
        "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": bus}},
        "Rule": {"Type": "AWS::Events::Rule", "Properties": {
            "EventBusName": {"Ref": "Bus"}, "EventPattern": {"source": ["x"]}}}},
        "Outputs": {"BusName": {"Value": {"Ref": "Bus"}}}})
    assert described["StackStatus"] == "CREATE_COMPLETE"
    assert outputs(described)["BusName"] == bus
    rules = cdk_emulator.boto3_client("events").list_rules(EventBusName=bus)["Rules"]
    assert len(rules) == 1


MACHINE = {"StartAt": "Put", "States": {"Put": {
    "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
    "Parameters": {"QueueUrl": "${QueueUrl}", "MessageBody.$": "$"}, "End": True}}}


def test_state_machines_from_cloudformation(cdk_emulator: Any) -> None:
    cf = cdk_emulator.boto3_client("cloudformation")
    sqs = cdk_emulator.boto3_client("sqs")
    sfn = cdk_emulator.boto3_client("stepfunctions")
    stack, queue, machine = unique("stack"), unique("q"), unique("sm")
    template: dict[str, Any] = {"Resources": {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": queue}},
        "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": f"/x/{machine}"}},
        "Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
            "StateMachineName": machine, "RoleArn": "arn:aws:iam::123456789012:role/x",
            "DefinitionString": json.dumps(MACHINE),
            "DefinitionSubstitutions": {"QueueUrl": {"Ref": "Queue"}},
            "LoggingConfiguration": {"Level": "ALL", "IncludeExecutionData": True,
                                     "Destinations": [{"CloudWatchLogsLogGroup": {
                                         "LogGroupArn": {"Fn::GetAtt": ["Logs", "Arn"]}}}]},
            "TracingConfiguration": {"Enabled": True}}}},
        "Outputs": {"Arn": {"Value": {"Ref": "Machine"}}}}
    arn = outputs(deploy(cf, stack, template))["Arn"]
    described = sfn.describe_state_machine(stateMachineArn=arn)  # the API's backend sees it
    assert "${" not in described["definition"]
    assert described["loggingConfiguration"]["level"] == "ALL"
    assert described["tracingConfiguration"] == {"enabled": True}
    execution = sfn.start_execution(stateMachineArn=arn, input='{"hello": 1}')
    assert cdk_emulator.wait_for_execution(execution["executionArn"])["status"] == "SUCCEEDED"
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    messages: list[dict[str, Any]] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)[
        "Messages"]
    assert json.loads(messages[0]["Body"]) == {"hello": 1}
    template["Resources"]["Machine"]["Properties"]["DefinitionString"] = json.dumps(
        {**MACHINE, "Comment": "v2"})
    assert deploy(cf, stack, template)["StackStatus"] == "UPDATE_COMPLETE"
    assert json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])[
        "Comment"] == "v2"
    cf.delete_stack(StackName=stack)
    assert arn not in [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]]


def test_change_set_execution(cdk_emulator: Any) -> None:
    cf = cdk_emulator.boto3_client("cloudformation")
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


def test_missing_change_sets(cdk_emulator: Any) -> None:
    cf = cdk_emulator.boto3_client("cloudformation")
    name = unique("cdk-deploy-change-set")
    with pytest.raises(ClientError) as caught:
        cf.describe_change_set(StackName="nope", ChangeSetName=name)
    assert caught.value.response["Error"]["Code"] == "ChangeSetNotFound"
    cf.delete_change_set(StackName="nope", ChangeSetName=name)


def test_previous_ssm_parameter_values(cdk_emulator: Any) -> None:
    cf = cdk_emulator.boto3_client("cloudformation")
    name = f"/cdk-bootstrap/{uuid.uuid4().hex[:8]}/version"
    cdk_emulator.boto3_client("ssm").put_parameter(Name=name, Value="30", Type="String")
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


def test_updates_without_support(cdk_emulator: Any) -> None:
    cf = cdk_emulator.boto3_client("cloudformation")
    logs = cdk_emulator.boto3_client("logs")
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


def test_sqs_queue_policies(cdk_emulator: Any) -> None:
    cf = cdk_emulator.boto3_client("cloudformation")
    sqs = cdk_emulator.boto3_client("sqs")
    stack, queue = unique("stack"), unique("q")
    deny = {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sqs:*",
            "Resource": {"Fn::GetAtt": ["Queue", "Arn"]},
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    deploy(cf, stack, {"Resources": {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": queue}},
        "Policy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {
            "Queues": [{"Ref": "Queue"}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [deny]}}}}})
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    policy = json.loads(sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert policy["Statement"][0]["Condition"] == deny["Condition"]
    cf.delete_stack(StackName=stack)
    assert queue not in " ".join(sqs.list_queues().get("QueueUrls", []))
