"""Extension sfn_task_tokens: SendTaskHeartbeat is accepted by a waiting task without
HeartbeatSeconds (moto 5.2.5: InvalidToken), and every answer to a task that has ended
gets TaskTimedOut while the execution runs on (moto 5.2.5: accepted and ignored) — also
in the moment after a state's TimeoutSeconds fired, before moto's waiting thread notices."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

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


@pytest.fixture(scope="module")
def slow_wait_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An emulator whose token waits start `DELAY_SECONDS` late (a slow service call)."""
    from tests.support.emulators import start_dedicated_emulator

    log = tmp_path_factory.mktemp("slow-wait-emulator") / "server.log"
    running = start_dedicated_emulator(("tests.support.slow_token_wait",), log)
    try:
        yield running
    finally:
        running.stop()


def test_an_answer_after_the_states_timeout_gets_task_timed_out(
        slow_wait_emulator: Any) -> None:
    """The state's TimeoutSeconds fires while moto's waiting thread still waits on its
    own later clock: an answer in between must be refused, as on AWS (moto 5.2.5
    accepted it and ignored it: a late approve looked like a success)."""
    from tests.support.slow_token_wait import DELAY_SECONDS

    emulator = slow_wait_emulator
    queue = emulator.create_queue("late", dlq=False)
    machine = emulator.create_state_machine("late", {"StartAt": "Ask", "States": {
        "Ask": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "TimeoutSeconds": 1, "ResultPath": "$.answer", "Next": "Answered",
                "Parameters": {"QueueUrl": queue.url, "MessageBody": {"t.$": "$$.Task.Token"}},
                "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error",
                           "Next": "TimedOut"}]},
        "Answered": {"Type": "Succeed"},
        "TimedOut": {"Type": "Wait", "Seconds": int(DELAY_SECONDS) + 2, "End": True}}})
    sfn = emulator.boto3_client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    got = emulator.boto3_client("sqs").receive_message(QueueUrl=queue.url, WaitTimeSeconds=5)
    token = json.loads(got["Messages"][0]["Body"])["t"]
    deadline = time.monotonic() + 5
    while not any(e["type"] == "TaskTimedOut" for e in emulator.execution_history(execution)):
        assert time.monotonic() < deadline, "the task never timed out"
        time.sleep(0.05)
    # The state has timed out; moto's waiting thread is still inside its delayed wait.
    with pytest.raises(sfn.exceptions.TaskTimedOut):
        sfn.send_task_success(taskToken=token, output='{"late": true}')
    with pytest.raises(sfn.exceptions.TaskTimedOut):
        sfn.send_task_heartbeat(taskToken=token)
    described = emulator.wait_for_execution(execution, timeout=DELAY_SECONDS + 10)
    assert described["status"] == "SUCCEEDED"
    assert "late" not in described["output"]
    assert json.loads(described["output"])["error"]["Error"] == "States.Timeout"
