"""Extension sfn_task_tokens: SendTaskHeartbeat is accepted by a waiting task without
HeartbeatSeconds (moto 5.2.5: InvalidToken), and every answer to a task that has ended
gets TaskTimedOut while the execution runs on (moto 5.2.5: accepted and ignored)."""

from __future__ import annotations

import json

import pytest

from core_saga.emulator.pytest_plugin import AwsScope


def test_heartbeats_while_waiting_and_task_timed_out_after(aws: AwsScope) -> None:
    queue = aws.create_queue("q", dlq=False)
    machine = aws.create_state_machine("m", {"StartAt": "Ask", "States": {
        "Ask": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "TimeoutSeconds": 10, "ResultPath": "$.answer", "Next": "Hold",
                "Parameters": {"QueueUrl": queue.url, "MessageBody": {"t.$": "$$.Task.Token"}}},
        "Hold": {"Type": "Wait", "Seconds": 2, "End": True}}})
    sfn = aws.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=machine)
    got = aws.client("sqs").receive_message(QueueUrl=queue.url, WaitTimeSeconds=5)
    token = json.loads(got["Messages"][0]["Body"])["t"]
    sfn.send_task_heartbeat(taskToken=token)
    sfn.send_task_success(taskToken=token, output='{"first": true}')
    # The task has ended; the execution still runs (Hold).
    with pytest.raises(sfn.exceptions.TaskTimedOut):
        sfn.send_task_heartbeat(taskToken=token)
    with pytest.raises(sfn.exceptions.TaskTimedOut):
        sfn.send_task_success(taskToken=token, output='{"second": true}')
    with pytest.raises(sfn.exceptions.TaskTimedOut):
        sfn.send_task_failure(taskToken=token, error="Late")
    described = aws.emulator.wait_for_execution(execution["executionArn"])
    assert json.loads(described["output"]) == {"answer": {"first": True}}
    with pytest.raises(sfn.exceptions.InvalidToken):  # the execution has ended too
        sfn.send_task_success(taskToken=token, output="{}")
