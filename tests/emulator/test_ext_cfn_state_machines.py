"""Extension cfn_state_machines: a state machine made by CloudFormation runs, with its
substitutions, logging and tracing, updates and goes with its stack."""

from __future__ import annotations

import json
from typing import Any

from core_saga.emulator import Emulator
from core_saga.emulator._extensions.cfn_state_machines import substitute_definition

from ._cfn import deploy, outputs, unique

MACHINE = {"StartAt": "Put", "States": {"Put": {
    "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
    "Parameters": {"QueueUrl": "${QueueUrl}", "MessageBody.$": "$"}, "End": True}}}


def test_substitute_definition() -> None:
    text = '{"A": "${Table}", "B": "${Other}", "C": "$.path"}'
    assert substitute_definition(text, {"Table": "t1"}) == (
        '{"A": "t1", "B": "${Other}", "C": "$.path"}')


def test_state_machines_from_cloudformation(emulator: Emulator) -> None:
    cf = emulator.boto3_client("cloudformation")
    sqs = emulator.boto3_client("sqs")
    sfn = emulator.boto3_client("stepfunctions")
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
    assert emulator.wait_for_execution(execution["executionArn"])["status"] == "SUCCEEDED"
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
