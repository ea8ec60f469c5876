"""Extension cfn_import_existing: a stack deleted with ``DeletionPolicy: Retain`` leaves
its queue, table and log group (with their data); a change set with
``ImportExistingResources`` adopts them, one without it fails as on AWS."""

from __future__ import annotations

from typing import Any

from core_saga.emulator import Emulator

from ._cfn import deploy, unique


def _template(queue: str, table: str, group: str, *, visibility: int) -> dict[str, Any]:
    retain = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    return {"Resources": {
        "Queue": {"Type": "AWS::SQS::Queue", **retain, "Properties": {
            "QueueName": queue, "VisibilityTimeout": visibility}},
        "Table": {"Type": "AWS::DynamoDB::Table", **retain, "Properties": {
            "TableName": table, "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}]}},
        "Logs": {"Type": "AWS::Logs::LogGroup", **retain, "Properties": {
            "LogGroupName": group, "RetentionInDays": 7}}}}


def test_retained_resources_are_adopted_with_their_data(emulator: Emulator) -> None:
    cf, sqs = emulator.boto3_client("cloudformation"), emulator.boto3_client("sqs")
    dynamodb = emulator.boto3_client("dynamodb")
    stack, queue, table = unique("stack"), unique("q"), unique("t")
    group = f"/x/{unique('g')}"
    assert deploy(cf, stack, _template(queue, table, group, visibility=30))[
        "StackStatus"] == "CREATE_COMPLETE"
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="kept")
    dynamodb.put_item(TableName=table, Item={"k": {"S": "kept"}})
    cf.delete_stack(StackName=stack)
    assert sqs.get_queue_url(QueueName=queue)["QueueUrl"] == url  # retained

    # without the parameter the deploy fails, as on AWS (the table exists)
    failed = deploy(cf, stack, _template(queue, table, group, visibility=60))
    assert failed["StackStatus"] == "CREATE_FAILED", failed
    cf.delete_stack(StackName=stack)

    adopted = deploy(cf, stack, _template(queue, table, group, visibility=60),
                     import_existing=True)
    assert adopted["StackStatus"] == "CREATE_COMPLETE", adopted.get("StackStatusReason")
    resources = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in
                 cf.list_stack_resources(StackName=stack)["StackResourceSummaries"]}
    assert resources["Table"] == table and resources["Logs"] == group
    assert resources["Queue"].endswith(f"/{queue}")
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])[
        "Attributes"]["VisibilityTimeout"] == "60"  # updated as the template says
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0][
        "Body"] == "kept"
    assert dynamodb.get_item(TableName=table, Key={"k": {"S": "kept"}})["Item"]
