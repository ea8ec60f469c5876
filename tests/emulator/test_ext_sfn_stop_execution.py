"""Extension sfn_stop_execution: StopExecution of an execution waiting on a task token
ends it ABORTED (moto 5.2.5: FAILED with States.Timeout)."""

from __future__ import annotations

import json

from core_saga.emulator.pytest_plugin import AwsScope


def test_stopping_an_execution_that_waits_on_a_task_token_aborts_it(aws: AwsScope) -> None:
    queue = aws.create_queue("tasks", dlq=False)
    machine = aws.create_state_machine("waits", {"StartAt": "Ask", "States": {"Ask": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue.url, "MessageBody": {"token.$": "$$.Task.Token"}},
        "TimeoutSeconds": 120,
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}], "End": True},
        "Handled": {"Type": "Pass", "End": True}}})
    sfn, sqs = aws.client("stepfunctions"), aws.client("sqs")
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    got = sqs.receive_message(QueueUrl=queue.url, WaitTimeSeconds=10)["Messages"]
    assert json.loads(got[0]["Body"])["token"]  # the task waits
    sfn.stop_execution(executionArn=arn)
    described = aws.emulator.wait_for_execution(arn, timeout=30)
    assert described["status"] == "ABORTED", described
