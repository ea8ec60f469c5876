"""Extension sfn_retry_task_token: each Retry attempt of a .waitForTaskToken task sends a
new token and waits for it (moto 5.2.5 reuses the token and resolves at once with the
previous attempt's outcome)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from core_saga.emulator.pytest_plugin import AwsScope


def _retrying(aws: AwsScope, retry_on: str, timeout: int) -> tuple[str, str]:
    queue = aws.create_queue("ship", dlq=False)
    machine = aws.create_state_machine("ship", {"StartAt": "Ship", "States": {"Ship": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "TimeoutSeconds": timeout, "End": True,
        "Parameters": {"QueueUrl": queue.url, "MessageBody": {"t.$": "$$.Task.Token",
                                                              "n.$": "$$.State.RetryCount"}},
        "Retry": [{"ErrorEquals": [retry_on], "IntervalSeconds": 1, "MaxAttempts": 2}]}}})
    execution = aws.client("stepfunctions").start_execution(stateMachineArn=machine)
    return queue.url, execution["executionArn"]


def _task(aws: AwsScope, queue_url: str) -> dict[str, Any]:
    sqs = aws.client("sqs")
    got = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=5)["Messages"][0]
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=got["ReceiptHandle"])
    body: dict[str, Any] = json.loads(got["Body"])
    return body


def test_a_retry_after_send_task_failure_waits_for_its_own_token(aws: AwsScope) -> None:
    queue_url, arn = _retrying(aws, "Busy", timeout=10)
    sfn = aws.client("stepfunctions")
    first = _task(aws, queue_url)
    sfn.send_task_failure(taskToken=first["t"], error="Busy")
    second = _task(aws, queue_url)
    assert (first["n"], second["n"]) == (0, 1) and second["t"] != first["t"]
    time.sleep(1)
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"  # it waits
    with pytest.raises(sfn.exceptions.TaskTimedOut):
        sfn.send_task_success(taskToken=first["t"], output="{}")
    sfn.send_task_success(taskToken=second["t"], output='{"done": true}')
    described = aws.emulator.wait_for_execution(arn, timeout=10)
    assert json.loads(described["output"]) == {"done": True}


def test_a_retry_after_a_timeout_waits_for_its_own_token(aws: AwsScope) -> None:
    queue_url, arn = _retrying(aws, "States.Timeout", timeout=1)
    first = _task(aws, queue_url)
    second = _task(aws, queue_url)  # after the 1 s timeout and the 1 s interval
    assert second["t"] != first["t"]
    aws.client("stepfunctions").send_task_success(taskToken=second["t"], output='"ok"')
    assert json.loads(aws.emulator.wait_for_execution(arn, timeout=10)["output"]) == "ok"
