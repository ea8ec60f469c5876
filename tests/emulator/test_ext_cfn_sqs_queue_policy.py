"""Extension cfn_sqs_queue_policy: ``AWS::SQS::QueuePolicy`` sets the queues' policy
(moto 5.2.5 skips the resource)."""

from __future__ import annotations

import json

from core_saga.emulator import Emulator

from ._cfn import deploy, unique


def test_sqs_queue_policies(emulator: Emulator) -> None:
    cf = emulator.boto3_client("cloudformation")
    sqs = emulator.boto3_client("sqs")
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
