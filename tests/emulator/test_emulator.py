"""The emulator itself: it starts and stops, makes queues with dead-letter queues, hands
out clients, and its server dies with its parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request

import pytest

from core_saga.emulator import Emulator, start_emulator
from core_saga.emulator.pytest_plugin import AwsScope


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
            return True
    except OSError:
        return False


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_it_answers_on_loopback_with_fake_credentials(emulator: Emulator) -> None:
    assert emulator.endpoint_url == f"http://127.0.0.1:{emulator.port}"
    assert os.environ["MOTO_PORT"] == str(emulator.port)
    assert emulator.client_kwargs() == {
        "endpoint_url": emulator.endpoint_url, "region_name": "us-east-1",
        "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    assert emulator.boto3_client("sqs") is emulator.boto3_client("sqs")
    assert _answers(emulator.endpoint_url)


def test_queue_with_redrive_moves_a_message_to_its_dlq_after_n_receives(
        aws: AwsScope) -> None:
    queue = aws.create_queue("redrive", max_receive_count=2, visibility_timeout=1)
    assert queue.dlq_url is not None and queue.name.endswith("redrive")
    sqs = aws.client("sqs")
    policy = json.loads(sqs.get_queue_attributes(
        QueueUrl=queue.url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"])
    assert policy["deadLetterTargetArn"] == queue.dlq_arn
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


def test_fifo_queue_and_its_dlq_end_in_fifo_without_content_dedup(aws: AwsScope) -> None:
    queue = aws.create_queue("orders", fifo=True)
    assert queue.name.endswith("orders.fifo")
    assert queue.dlq_url is not None and queue.dlq_url.endswith("orders-dlq.fifo")
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=queue.url, AttributeNames=["All"])["Attributes"]
    assert attributes["FifoQueue"] == "true"
    assert attributes["ContentBasedDeduplication"] == "false"
    assert "RedrivePolicy" in attributes
    assert aws.create_queue("plain", dlq=False).dlq_url is None


def test_create_bus(aws: AwsScope) -> None:
    arn = aws.create_bus("bus")
    assert arn.endswith(f":event-bus/{aws.name('bus')}")


def test_step_functions_execution_is_switched_on(aws: AwsScope) -> None:
    arn = aws.create_state_machine("pass", {"StartAt": "Add", "States": {"Add": {
        "Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.a, $.b)"}, "End": True}}})
    described = aws.run(arn, {"a": 2, "b": 3})
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"sum": 5}  # real ASL ran


async def test_aiobotocore_client_round_trip(aws: AwsScope) -> None:
    queue = aws.create_queue("aio", dlq=False)
    async with aws.emulator.aio_client("sqs") as sqs:
        await sqs.send_message(QueueUrl=queue.url, MessageBody="hello")
        got = await sqs.receive_message(QueueUrl=queue.url, WaitTimeSeconds=1)
        assert got["Messages"][0]["Body"] == "hello"
    session = aws.emulator.aio_session()
    async with session.create_client("sqs", endpoint_url=aws.emulator.endpoint_url) as sqs:
        got = await sqs.get_queue_url(QueueName=queue.name)
        assert got["QueueUrl"] == queue.url


def test_own_server_outlives_the_thread_that_started_it_resets_and_stops() -> None:
    box: dict[str, Emulator] = {}
    thread = threading.Thread(target=lambda: box.setdefault("e", start_emulator()))
    thread.start()
    thread.join()
    own = box["e"]
    with own:
        time.sleep(0.7)  # the thread is gone: PR_SET_PDEATHSIG would have killed it
        assert _answers(own.endpoint_url)
        own.create_queue("before-reset")
        own.reset()
        assert own.boto3_client("sqs").list_queues().get("QueueUrls") is None
        arn = own.create_state_machine("after-reset", {"StartAt": "P", "States": {"P": {
            "Type": "Pass", "Parameters": {"id.$": "States.UUID()"}, "End": True}}})
        execution = own.boto3_client("stepfunctions").start_execution(stateMachineArn=arn)
        described = own.wait_for_execution(execution["executionArn"], timeout=10)
        assert len(json.loads(described["output"])["id"]) == 36  # execution still on
        stopping = time.monotonic()
    assert own.process is not None and own.process.poll() is not None
    assert time.monotonic() - stopping < 2 and not _answers(own.endpoint_url)
    own.stop()  # twice is fine


def test_the_server_dies_with_a_killed_parent() -> None:
    script = textwrap.dedent("""
        from core_saga.emulator import start_emulator
        import time
        e = start_emulator()
        print(e.process.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert parent.stdout is not None
    server_pid = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    if not _gone(server_pid, within=5):
        os.kill(server_pid, signal.SIGKILL)
        raise AssertionError("the emulator outlived its parent")


def test_an_already_running_server_can_be_given(monkeypatch: pytest.MonkeyPatch,
                                                emulator: Emulator) -> None:
    monkeypatch.setenv("STEPSAGA_AWS_ENDPOINT_URL", emulator.endpoint_url + "/")
    given = start_emulator()
    assert given.endpoint_url == emulator.endpoint_url and given.process is None
    assert given.port == emulator.port
    given.stop()  # leaves the shared server running
    assert emulator.boto3_client("sqs").list_queues() is not None
