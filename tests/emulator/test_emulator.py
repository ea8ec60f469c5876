"""The emulator itself: it starts, makes queues with dead-letter queues, and its
server dies with its parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

from core_saga.emulator import Emulator, start_emulator


def test_queue_with_redrive_moves_a_message_to_its_dlq_after_n_receives(
        emulator: Emulator) -> None:
    queue = emulator.create_queue("emu-redrive", max_receive_count=2, visibility_timeout=1)
    sqs = emulator.boto3_client("sqs")
    sqs.send_message(QueueUrl=queue.url, MessageBody="poison")
    for _ in range(2):
        got = sqs.receive_message(QueueUrl=queue.url, WaitTimeSeconds=2)
        assert got["Messages"][0]["Body"] == "poison"
        sqs.change_message_visibility(QueueUrl=queue.url,
                                      ReceiptHandle=got["Messages"][0]["ReceiptHandle"],
                                      VisibilityTimeout=0)
    assert sqs.receive_message(QueueUrl=queue.url, WaitTimeSeconds=1).get("Messages") is None
    dead = sqs.receive_message(QueueUrl=queue.dlq_url, WaitTimeSeconds=1)
    assert dead["Messages"][0]["Body"] == "poison"


def test_step_functions_execution_is_switched_on(emulator: Emulator) -> None:
    sfn = emulator.boto3_client("stepfunctions")
    definition = {"StartAt": "Add", "States": {"Add": {
        "Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.a, $.b)"}, "End": True}}}
    arn = sfn.create_state_machine(name="emu-pass", definition=json.dumps(definition),
                                   roleArn="arn:aws:iam::123456789012:role/sfn")[
        "stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input='{"a": 2, "b": 3}')
    deadline = time.monotonic() + 10
    while (described := sfn.describe_execution(
            executionArn=execution["executionArn"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"sum": 5}  # real ASL ran
    assert os.environ["MOTO_PORT"] == str(emulator.port)


async def test_aiobotocore_client_round_trip(emulator: Emulator) -> None:
    queue = emulator.create_queue("emu-aio", dlq=False)
    async with emulator.aio_client("sqs") as sqs:
        await sqs.send_message(QueueUrl=queue.url, MessageBody="hello")
        got = await sqs.receive_message(QueueUrl=queue.url, WaitTimeSeconds=1)
        assert got["Messages"][0]["Body"] == "hello"


def test_the_server_dies_with_a_killed_parent() -> None:
    script = textwrap.dedent("""
        from core_saga.emulator import start_emulator
        import sys, time
        e = start_emulator()
        print(e.process.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert parent.stdout is not None
    server_pid = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(server_pid, signal.SIGKILL)
    raise AssertionError("the emulator outlived its parent")


def test_an_already_running_server_can_be_given(monkeypatch, emulator: Emulator) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STEPSAGA_AWS_ENDPOINT_URL", emulator.endpoint_url)
    given = start_emulator()
    assert given.endpoint_url == emulator.endpoint_url and given.process is None
    given.stop()  # leaves the shared server running
    assert emulator.boto3_client("sqs").list_queues() is not None
