"""Extension sfn_task_failure_cause: SendTaskFailure's cause reaches the Catch and the
history (moto 5.2.5 drops it)."""

from __future__ import annotations

import json

from core_saga.emulator.pytest_plugin import AwsScope


def test_the_catch_gets_error_and_cause(aws: AwsScope) -> None:
    queue = aws.create_queue("review", dlq=False)
    machine = aws.create_state_machine("review", {"StartAt": "Ask", "States": {
        "Ask": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue.url,
                               "MessageBody": {"taskToken.$": "$$.Task.Token"}},
                "TimeoutSeconds": 10, "ResultPath": "$.answer",
                "Catch": [{"ErrorEquals": ["Rejected"], "ResultPath": "$.failure",
                           "Next": "Rejected"}], "End": True},
        "Rejected": {"Type": "Pass", "End": True}}})
    sfn = aws.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=machine, input='{"order": "o-1"}')
    message = aws.client("sqs").receive_message(QueueUrl=queue.url, WaitTimeSeconds=5)
    token = json.loads(message["Messages"][0]["Body"])["taskToken"]
    sfn.send_task_failure(taskToken=token, error="Rejected", cause="the reviewer said no")
    described = aws.emulator.wait_for_execution(execution["executionArn"], timeout=10)
    assert json.loads(described["output"]) == {
        "order": "o-1", "failure": {"Error": "Rejected", "Cause": "the reviewer said no"}}
    [failed] = [e for e in aws.emulator.execution_history(execution["executionArn"])
                if e["type"] == "TaskFailed"]
    assert failed["taskFailedEventDetails"]["cause"] == "the reviewer said no"
    assert failed["taskFailedEventDetails"]["error"] == "Rejected"
