"""What the ASL interpreter of moto 5.2.5 (with our extensions) does with the features the
supervisor workflows use. ``test_*`` probes pin what works; ``test_limit_*`` probes pin
what does not (docs/emulator.md lists them), so a moto upgrade that changes either shows
here first."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
import uuid
from typing import Any

import pytest

from core_saga.emulator.pytest_plugin import AwsScope

SQS_TOKEN_TASK = "arn:aws:states:::sqs:sendMessage.waitForTaskToken"


def _one(state: dict[str, Any], **more: Any) -> dict[str, Any]:
    """A machine of one state (``S``) plus `more` states."""
    return {"StartAt": "S", "States": {"S": state, **more}}


def _pass(parameters: dict[str, Any]) -> dict[str, Any]:
    return _one({"Type": "Pass", "Parameters": parameters, "End": True})


def _succeeded(described: dict[str, Any]) -> Any:
    assert described["status"] == "SUCCEEDED", described
    return json.loads(described["output"])


def _receive_token(aws: AwsScope, queue_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    got = aws.client("sqs").receive_message(QueueUrl=queue_url, WaitTimeSeconds=5,
                                            MessageAttributeNames=["All"])
    message = got["Messages"][0]
    return json.loads(message["Body"]), message.get("MessageAttributes", {})


# --- works -------------------------------------------------------------------------------

def test_sqs_send_message_wait_for_task_token_round_trip(aws: AwsScope) -> None:
    queue = aws.create_queue("saga", dlq=False)
    machine = aws.create_state_machine("deliver", _one({
        "Type": "Task", "Resource": SQS_TOKEN_TASK, "TimeoutSeconds": 10,
        "Parameters": {
            "QueueUrl": queue.url,
            "MessageBody": {"taskToken.$": "$$.Task.Token", "execution.$": "$$.Execution.Id",
                            "retry.$": "$$.State.RetryCount", "order.$": "$.order"},
            "MessageAttributes": {"MessageType": {"DataType": "String",
                                                  "StringValue": "urn:message:x:Y:v1"}}},
        "ResultPath": "$.ack", "End": True}))
    sfn = aws.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=machine, input='{"order": "o-1"}')
    body, attributes = _receive_token(aws, queue.url)
    assert body["execution"] == execution["executionArn"] and body["order"] == "o-1"
    assert body["retry"] == 0 and body["taskToken"]
    assert attributes["MessageType"]["StringValue"] == "urn:message:x:Y:v1"
    sfn.send_task_heartbeat(taskToken=body["taskToken"])
    sfn.send_task_success(taskToken=body["taskToken"], output='{"applied": true}')
    described = aws.emulator.wait_for_execution(execution["executionArn"], timeout=10)
    assert _succeeded(described) == {"order": "o-1", "ack": {"applied": True}}


def test_dynamodb_conditional_put_claims_once_and_catches_the_duplicate(aws: AwsScope) -> None:
    table = aws.name("handoffs")
    aws.client("dynamodb").create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    machine = aws.create_state_machine("claim", {"StartAt": "Claim", "States": {
        "Claim": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
                  "Parameters": {"TableName": table,
                                 "Item": {"pk": {"S.$": "$.handoffId"},
                                          "execution": {"S.$": "$$.Execution.Id"}},
                                 "ConditionExpression": "attribute_not_exists(pk)"},
                  "ResultPath": None, "Next": "Read",
                  "Catch": [{"ErrorEquals": ["DynamoDB.ConditionalCheckFailedException"],
                             "ResultPath": "$.duplicate", "Next": "Duplicate"}]},
        "Read": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
                 "Parameters": {"TableName": table, "Key": {"pk": {"S.$": "$.handoffId"}}},
                 "ResultSelector": {"pk.$": "$.Item.pk.S"}, "ResultPath": "$.read",
                 "Next": "Mark"},
        "Mark": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:updateItem",
                 "Parameters": {"TableName": table, "Key": {"pk": {"S.$": "$.handoffId"}},
                                "UpdateExpression": "SET #s = :s",
                                "ExpressionAttributeNames": {"#s": "status"},
                                "ExpressionAttributeValues": {":s": {"S": "started"}}},
                 "ResultPath": None, "End": True},
        "Duplicate": {"Type": "Succeed"}}})
    first = _succeeded(aws.run(machine, {"handoffId": "h-1"}))
    assert first == {"handoffId": "h-1", "read": {"pk": "h-1"}}
    second = _succeeded(aws.run(machine, {"handoffId": "h-1"}))
    assert second["duplicate"]["Error"] == "DynamoDB.ConditionalCheckFailedException"
    assert "conditional request failed" in second["duplicate"]["Cause"]


def test_events_put_events_from_a_workflow_reaches_the_bus(aws: AwsScope) -> None:
    bus = aws.name("bus")
    aws.create_bus("bus")
    queue = aws.create_queue("started", dlq=False)
    events = aws.client("events")
    events.put_rule(Name=aws.name("r"), EventBusName=bus,
                    EventPattern=json.dumps({"detail-type": ["SupervisionStarted"]}))
    events.put_targets(Rule=aws.name("r"), EventBusName=bus, Targets=[
        {"Id": "q", "Arn": queue.arn, "InputPath": "$.detail"}])
    machine = aws.create_state_machine("report", _one({
        "Type": "Task", "Resource": "arn:aws:states:::events:putEvents",
        "Parameters": {"Entries": [{
            "EventBusName": bus, "Source": "stepsaga.supervisor",
            "DetailType": "SupervisionStarted",
            "Detail": {"handoffId.$": "$.handoffId", "executionArn.$": "$$.Execution.Id"}}]},
        "End": True}))
    result = _succeeded(aws.run(machine, {"handoffId": "h-1"}))
    assert result["FailedEntryCount"] == 0
    got = aws.client("sqs").receive_message(QueueUrl=queue.url, WaitTimeSeconds=2)
    detail = json.loads(got["Messages"][0]["Body"])
    assert detail["handoffId"] == "h-1" and ":execution:" in detail["executionArn"]


def _failing_task(retrier: dict[str, Any]) -> dict[str, Any]:
    """A task that always fails (a missing table) with `retrier`, then caught."""
    return _one({"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
                 "Parameters": {"TableName": "no-such-table", "Key": {"pk": {"S": "x"}}},
                 "Retry": [retrier], "End": True,
                 "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                            "Next": "Caught"}]},
                Caught={"Type": "Pass", "End": True})


def test_retry_interval_backoff_max_attempts_max_delay_and_jitter(aws: AwsScope) -> None:
    retriers = {  # name: (retrier, expected gaps between attempts, or upper bounds)
        "backoff": ({"ErrorEquals": ["DynamoDB.ResourceNotFoundException"],
                     "IntervalSeconds": 1, "BackoffRate": 2, "MaxAttempts": 2}, [1, 2]),
        "capped": ({"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1,
                    "BackoffRate": 3, "MaxAttempts": 2, "MaxDelaySeconds": 1}, [1, 1]),
        "jitter": ({"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "BackoffRate": 2,
                    "MaxAttempts": 2, "JitterStrategy": "FULL"}, [1, 2]),
    }
    sfn = aws.client("stepfunctions")
    started = {name: sfn.start_execution(stateMachineArn=aws.create_state_machine(
        name, _failing_task(retrier)))["executionArn"] for name, (retrier, _) in retriers.items()}
    for name, arn in started.items():
        output = _succeeded(aws.emulator.wait_for_execution(arn, timeout=15))
        assert output["error"]["Error"] == "DynamoDB.ResourceNotFoundException"
        times = [e["timestamp"] for e in aws.emulator.execution_history(arn)
                 if e["type"] == "TaskScheduled"]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        expected = retriers[name][1]
        assert len(gaps) == len(expected), (name, gaps)
        for gap, want in zip(gaps, expected, strict=True):
            if name == "jitter":
                assert 0 <= gap <= want + 0.3, (name, gaps)
            else:
                assert want - 0.05 <= gap <= want + 0.5, (name, gaps)


def test_wait_for_task_token_timeout_raises_states_timeout(aws: AwsScope) -> None:
    queue = aws.create_queue("slow", dlq=False)
    machine = aws.create_state_machine("timeout", _one({
        "Type": "Task", "Resource": SQS_TOKEN_TASK, "TimeoutSeconds": 1,
        "Parameters": {"QueueUrl": queue.url, "MessageBody": {"t.$": "$$.Task.Token"}},
        "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error",
                   "Next": "TimedOut"}], "End": True},
        TimedOut={"Type": "Pass", "End": True}))
    output = _succeeded(aws.run(machine, {}))
    assert output["error"]["Error"] == "States.Timeout"
    body, _ = _receive_token(aws, queue.url)
    sfn = aws.client("stepfunctions")
    with pytest.raises(sfn.exceptions.InvalidToken):  # AWS: TaskTimedOut
        sfn.send_task_success(taskToken=body["t"], output="{}")


def test_intrinsic_functions(aws: AwsScope) -> None:
    machine = aws.create_state_machine("intrinsics", _pass({
        "uuid.$": "States.UUID()",
        "text.$": "States.Format('order {} needs {} review', $.order, $.level)",
        "parsed.$": "States.StringToJson($.body)",
        "dumped.$": "States.JsonToString($.obj)",
        "sum.$": "States.MathAdd($.n, 1)",
        "first.$": "States.ArrayGetItem($.items, 0)",
        "count.$": "States.ArrayLength($.items)",
        "has.$": "States.ArrayContains($.items, 'b')",
        "parts.$": "States.StringSplit($.csv, ',')",
        "merged.$": "States.JsonMerge($.obj, $.more, false)",
        "array.$": "States.Array($.order, $.n)",
        "hash.$": "States.Hash($.order, 'SHA-256')",
        "b64.$": "States.Base64Encode($.order)",
    }))
    output = _succeeded(aws.run(machine, {
        "order": "o-1", "level": 2, "body": '{"k": [1, 2]}', "obj": {"a": 1},
        "more": {"b": 2}, "n": 4, "items": ["a", "b"], "csv": "x,y"}))
    uuid.UUID(output.pop("uuid"))
    assert output.pop("hash") == hashlib.sha256(b"o-1").hexdigest()
    assert output == {
        "text": "order o-1 needs 2 review", "parsed": {"k": [1, 2]}, "dumped": '{"a":1}',
        "sum": 5, "first": "a", "count": 2, "has": True, "parts": ["x", "y"],
        "merged": {"a": 1, "b": 2}, "array": ["o-1", 4], "b64": "by0x"}


def test_context_object(aws: AwsScope) -> None:
    machine = aws.create_state_machine("context", _pass({
        "id.$": "$$.Execution.Id", "name.$": "$$.Execution.Name",
        "input.$": "$$.Execution.Input", "started.$": "$$.Execution.StartTime",
        "machine.$": "$$.StateMachine.Id", "state.$": "$$.State.Name",
        "entered.$": "$$.State.EnteredTime"}))
    sfn = aws.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=machine, name="ctx-1", input='{"a": 1}')
    output = _succeeded(aws.emulator.wait_for_execution(execution["executionArn"]))
    assert output["id"] == execution["executionArn"] and output["name"] == "ctx-1"
    assert output["input"] == {"a": 1} and output["machine"] == machine
    assert output["state"] == "S"
    for key in ("started", "entered"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", output[key])


def test_fifo_send_with_group_and_deduplication_ids(aws: AwsScope) -> None:
    queue = aws.create_queue("saga", fifo=True, dlq=False)
    machine = aws.create_state_machine("fifo", _one({
        "Type": "Task", "Resource": SQS_TOKEN_TASK, "TimeoutSeconds": 10,
        "Parameters": {"QueueUrl": queue.url, "MessageGroupId.$": "$.order",
                       "MessageDeduplicationId.$": "States.Format('{}-done', $.order)",
                       "MessageBody": {"t.$": "$$.Task.Token"}},
        "End": True}))
    sfn = aws.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=machine, input='{"order": "o-1"}')
    got = aws.client("sqs").receive_message(QueueUrl=queue.url, WaitTimeSeconds=5,
                                            AttributeNames=["All"])["Messages"][0]
    assert got["Attributes"]["MessageGroupId"] == "o-1"
    assert got["Attributes"]["MessageDeduplicationId"] == "o-1-done"
    sfn.send_task_success(taskToken=json.loads(got["Body"])["t"], output='"ok"')
    assert _succeeded(aws.emulator.wait_for_execution(execution["executionArn"])) == "ok"


def test_execution_timeout_seconds(aws: AwsScope) -> None:
    machine = aws.create_state_machine("deadline", {
        "TimeoutSeconds": 1, "StartAt": "W",
        "States": {"W": {"Type": "Wait", "Seconds": 10, "End": True}}})
    assert aws.run(machine, {}, timeout=10)["status"] == "TIMED_OUT"


def test_choice_wait_parallel_and_map(aws: AwsScope) -> None:
    machine = aws.create_state_machine("flow", {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Default": "Other", "Choices": [
            {"And": [{"Variable": "$.decision", "IsPresent": True},
                     {"Variable": "$.decision", "StringEquals": "approve"},
                     {"Variable": "$.attempts", "NumericLessThanPath": "$.max"}],
             "Next": "W"}]},
        "W": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "Par"},
        "Par": {"Type": "Parallel", "ResultPath": "$.par", "Next": "Map", "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": 1, "End": True}}},
            {"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": 2, "End": True}}}]},
        "Map": {"Type": "Map", "ItemsPath": "$.items", "ResultPath": "$.mapped",
                "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "I",
                                  "States": {"I": {"Type": "Pass", "End": True}}},
                "End": True},
        "Other": {"Type": "Fail", "Error": "NotApproved", "Cause": "no"}}})
    output = _succeeded(aws.run(machine, {"decision": "approve", "attempts": 1, "max": 3,
                                          "delay": 0, "items": [1, 2]}))
    assert output["par"] == [1, 2] and output["mapped"] == [1, 2]
    failed = aws.run(machine, {"attempts": 1, "max": 3})
    assert (failed["status"], failed["error"], failed["cause"]) == ("FAILED", "NotApproved", "no")


def test_many_waiting_tasks_answered_at_once_from_threads(aws: AwsScope) -> None:
    queue = aws.create_queue("many", dlq=False)
    machine = aws.create_state_machine("many", _one({
        "Type": "Task", "Resource": SQS_TOKEN_TASK, "TimeoutSeconds": 10,
        "Parameters": {"QueueUrl": queue.url, "MessageBody": {"t.$": "$$.Task.Token"}},
        "End": True}))
    sfn = aws.client("stepfunctions")
    arns = [sfn.start_execution(stateMachineArn=machine)["executionArn"] for _ in range(5)]
    tokens = [_receive_token(aws, queue.url)[0]["t"] for _ in arns]
    threads = [threading.Thread(target=sfn.send_task_success,
                                kwargs={"taskToken": t, "output": '{"ok": 1}'}) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(_succeeded(aws.emulator.wait_for_execution(a)) == {"ok": 1} for a in arns)


# --- limits (docs/emulator.md) ---------------------------------------------------------------

def test_limit_heartbeat_timeout_is_reported_as_states_timeout(aws: AwsScope) -> None:
    """AWS raises States.HeartbeatTimeout; moto raises States.Timeout (heartbeats themselves
    work: they keep the task alive past HeartbeatSeconds)."""
    queue = aws.create_queue("beat", dlq=False)
    machine = aws.create_state_machine("beat", _one({
        "Type": "Task", "Resource": SQS_TOKEN_TASK, "TimeoutSeconds": 10,
        "HeartbeatSeconds": 1,
        "Parameters": {"QueueUrl": queue.url, "MessageBody": {"t.$": "$$.Task.Token"}},
        "Catch": [{"ErrorEquals": ["States.HeartbeatTimeout", "States.Timeout"],
                   "ResultPath": "$.error", "Next": "Lost"}], "End": True},
        Lost={"Type": "Pass", "End": True}))
    sfn = aws.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=machine)
    body, _ = _receive_token(aws, queue.url)
    started = time.monotonic()
    for _ in range(3):
        time.sleep(0.5)
        sfn.send_task_heartbeat(taskToken=body["t"])
    output = _succeeded(aws.emulator.wait_for_execution(execution["executionArn"]))
    assert time.monotonic() - started > 1.5  # the heartbeats kept it alive
    assert output["error"]["Error"] == "States.Timeout"


@pytest.mark.parametrize("definition", [
    {"QueryLanguage": "JSONata", "StartAt": "S",
     "States": {"S": {"Type": "Pass", "Output": "{% $states.input.a + 1 %}", "End": True}}},
    {"StartAt": "S", "States": {
        "S": {"Type": "Pass", "Assign": {"x.$": "$.a"}, "Next": "T"},
        "T": {"Type": "Pass", "Parameters": {"x.$": "$x"}, "End": True}}},
], ids=["jsonata", "assign-variables"])
def test_limit_jsonata_and_variables_fail(aws: AwsScope, definition: dict[str, Any]) -> None:
    """Both need a JVM bridge moto does not ship: the execution fails at run time."""
    described = aws.run(aws.create_state_machine("jsonata", definition), {"a": 1})
    assert (described["status"], described["error"]) == ("FAILED", "States.Runtime")


def test_limit_choice_on_an_array_index_path_never_matches(aws: AwsScope) -> None:
    machine = aws.create_state_machine("choice", {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Default": "No", "Choices": [
            {"Variable": "$.a[0].v", "StringEquals": "yes", "Next": "Yes"}]},
        "Yes": {"Type": "Pass", "Result": "yes", "End": True},
        "No": {"Type": "Pass", "Result": "no", "End": True}}})
    assert _succeeded(aws.run(machine, {"a": [{"v": "yes"}]})) == "no"  # AWS: "yes"


def test_limit_states_format_escaped_quote_and_object_arguments(aws: AwsScope) -> None:
    quote = aws.run(aws.create_state_machine("q", _pass(
        {"t.$": "States.Format('it\\'s {}', $.a)"})), {"a": 1})
    assert _succeeded(quote)["t"] != "it's 1"  # AWS: "it's 1"; moto's lexer ends at \'
    obj = aws.run(aws.create_state_machine("o", _pass(
        {"t.$": "States.Format('{}', $.o)"})), {"o": {"a": 1}})
    assert _succeeded(obj)["t"] == "{a=1}"  # not JSON: use States.JsonToString for that
