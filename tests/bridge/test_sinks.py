"""The bridge's outbox sinks against the emulator: PutEvents ten at a time with only
failed entries re-sent, permanent failures in the error store with their reason, and
task-token answers whose task is gone counted as done."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from bridge import EventBridgeSink, StepFunctionsSink, attach_bridge
from bridge._task_answers import TASK_ANSWER
from core_saga import AwsConfig, SystemClock
from core_saga.emulator import Emulator
from core_saga.emulator.pytest_plugin import AwsScope
from core_saga.extension import DeliveryStatus, OutboxDispatcher
from core_saga.persistence import MemoryStore, OutboxRow

pytestmark = pytest.mark.emulator


def _row(i: int, body: dict[str, Any], kind: str = "eventbridge") -> OutboxRow:
    now = datetime.now(UTC)
    return OutboxRow(id=i, message_id=f"m-{i}", kind=kind, destination="bus",
                     message_type="t", correlation_id=f"c-{i}", body=orjson.dumps(body),
                     created_at=now, deliver_at=now, attempts=0)


def _entry(bus: str, n: int, detail: str | None = None) -> dict[str, str]:
    return {"Source": "stepsaga.Test", "DetailType": "Thing", "EventBusName": bus,
            "Detail": detail if detail is not None else json.dumps({"n": n})}


async def _events_sink(emulator: Emulator, **options: Any) -> tuple[Any, EventBridgeSink]:
    config = AwsConfig(endpoint_url=emulator.endpoint_url, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    from bridge import AwsClients

    clients = AwsClients(config)
    return clients, EventBridgeSink(await clients.client("events"), **options)


async def test_partial_failure_resends_only_the_failed_entries(emulator: Emulator,
                                                              aws: AwsScope) -> None:
    bus = aws.name("bus")
    aws.create_bus("bus")
    queue = aws.create_queue("seen", dlq=False)
    events = aws.client("events")
    events.put_rule(Name=aws.name("r"), EventBusName=bus,
                    EventPattern=json.dumps({"source": ["stepsaga.Test"]}))
    events.put_targets(Rule=aws.name("r"), EventBusName=bus,
                       Targets=[{"Id": "q", "Arn": queue.arn}])
    clients, sink = await _events_sink(emulator, backoff_seconds=0.01)
    try:
        emulator.fail_put_events(3, error_code="ThrottlingException", bus=bus)
        rows = [_row(i, _entry(bus, i)) for i in range(12)]
        failed = await sink.deliver(bus, rows)
        assert failed == {}
        assert sink.calls == 3  # 10 + 2 entries; then the 3 that failed, once more
        assert sink.entries_sent == 12
        got: list[int] = []
        sqs = aws.client("sqs")
        for _ in range(5):
            for m in sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10,
                                         WaitTimeSeconds=1).get("Messages", []):
                got.append(json.loads(m["Body"])["detail"]["n"])
        assert sorted(got) == list(range(12))  # each once: nothing sent twice
    finally:
        await clients.close()


async def test_entries_still_failing_go_back_to_the_outbox_and_a_bad_one_is_permanent(
        emulator: Emulator, aws: AwsScope) -> None:
    bus = aws.name("bus2")
    aws.create_bus("bus2")
    clients, sink = await _events_sink(emulator, quick_retries=1, backoff_seconds=0.01)
    try:
        # both fail on the first call, the good one again on the re-send
        emulator.fail_put_events(3, error_code="InternalFailure", bus=bus)
        rows = [_row(1, _entry(bus, 1)), _row(2, _entry(bus, 2, detail="{not json"))]
        failed = await sink.deliver(bus, rows)
        assert failed[1].status is DeliveryStatus.RETRY
        assert failed[1].reason.startswith("PutEvents entry failed: InternalFailure")
        assert failed[2].status is DeliveryStatus.PERMANENT
        assert failed[2].reason.startswith("PutEvents entry failed: MalformedDetail")
    finally:
        await clients.close()


async def test_the_dispatcher_keeps_a_permanent_failure_in_the_error_store(
        emulator: Emulator, aws: AwsScope, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    store = MemoryStore()
    await store.create_schema()
    dispatcher = OutboxDispatcher(store, {}, SystemClock())
    sinks = await attach_bridge(dispatcher, AwsConfig(endpoint_url=emulator.endpoint_url))
    try:
        from core_saga.extension import Outgoing

        async with store.transaction() as tx:
            now = datetime.now(UTC)
            rows = await tx.add_outbox([Outgoing(
                kind="eventbridge", destination=aws.name("nobus"),
                body=orjson.dumps(_entry(aws.name("bus3"), 1, detail="[]x")),
                message_id="bad-entry", message_type="eventbridge:Thing",
                correlation_id="o-1")], now, now)
        await dispatcher.deliver(rows)
        (error,) = await store.list_errors()
        assert error.message_id == "bad-entry" and "MalformedDetail" in error.reason
        assert error.endpoint.startswith("outbox:eventbridge:")
    finally:
        await sinks.close()


async def test_an_answer_whose_task_is_gone_counts_as_done(emulator: Emulator) -> None:
    config = AwsConfig(endpoint_url=emulator.endpoint_url, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    from bridge import AwsClients

    async with AwsClients(config) as clients:
        sink = StepFunctionsSink(await clients.client("stepfunctions"))
        rows = [_row(1, {"action": "SendTaskSuccess", "taskToken": "no-such-token",
                         "output": "{}"}, kind=TASK_ANSWER),
                _row(2, {"action": "SendTaskFailure", "taskToken": "gone-too",
                         "error": "ShippingUnavailable", "cause": ""}, kind=TASK_ANSWER),
                _row(3, {"nonsense": True}, kind=TASK_ANSWER)]
        failed = await sink.deliver("stepfunctions", rows)
        assert sink.gone == 2 and sink.answered == 0
        assert failed[1].status is DeliveryStatus.SETTLED
        assert failed[1].reason.startswith("SendTaskSuccess: the task is gone (")
        assert failed[2].status is DeliveryStatus.SETTLED
        assert failed[2].reason.startswith("SendTaskFailure: the task is gone (")
        assert failed[3].status is DeliveryStatus.PERMANENT
        assert failed[3].reason.startswith("not a task answer")
        assert "no-such-token" not in repr(failed)


async def test_a_gone_answer_is_dispatched_with_its_note_not_retried(
        emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    store = MemoryStore()
    await store.create_schema()
    dispatcher = OutboxDispatcher(store, {}, SystemClock())
    sinks = await attach_bridge(dispatcher, AwsConfig(endpoint_url=emulator.endpoint_url))
    try:
        from core_saga.extension import Outgoing

        async with store.transaction() as tx:
            now = datetime.now(UTC)
            rows = await tx.add_outbox([Outgoing(
                kind=TASK_ANSWER, destination="stepfunctions",
                body=orjson.dumps({"action": "SendTaskSuccess", "taskToken": "expired",
                                   "output": "{}"}),
                message_id="late-ack", message_type="stepfunctions:SendTaskSuccess",
                correlation_id="o-1")], now, now)
        await dispatcher.deliver(rows)
        (row,) = await store.outbox_for("o-1")
        assert row.dispatched_at is not None and not row.failed
        assert row.last_error is not None and "the task is gone" in row.last_error
        assert await store.list_errors() == []
        assert await dispatcher.run_due() == 0  # nothing left to retry
    finally:
        await sinks.close()


async def test_heartbeats_keep_a_long_task_company_and_stop_when_it_is_gone(
        emulator: Emulator, aws: AwsScope) -> None:
    queue = aws.create_queue("long-work", dlq=False)
    machine = aws.create_state_machine("long-work", {"StartAt": "Work", "States": {"Work": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue.url, "MessageBody": {"token.$": "$$.Task.Token"}},
        "HeartbeatSeconds": 5, "TimeoutSeconds": 60, "End": True}}})
    sfn = aws.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    message = aws.client("sqs").receive_message(QueueUrl=queue.url, WaitTimeSeconds=5)
    token = json.loads(message["Messages"][0]["Body"])["token"]
    config = AwsConfig(endpoint_url=emulator.endpoint_url, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    from bridge import AwsClients, TaskHeartbeats

    async with AwsClients(config) as clients:
        heartbeats = TaskHeartbeats(await clients.client("stepfunctions"), every_seconds=0.2)
        async with heartbeats.keep_alive(token):
            await asyncio.sleep(1.1)  # the long work
        assert heartbeats.sent >= 4
        sfn.send_task_success(taskToken=token, output="{}")
        assert emulator.wait_for_execution(execution)["status"] == "SUCCEEDED"
        beaten = heartbeats.sent
        async with heartbeats.keep_alive(token):  # the task is gone: it stops by itself
            await asyncio.sleep(0.7)
        assert heartbeats.sent == beaten


class _RefusingStepFunctions:
    async def send_task_success(self, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": "InvalidOutput",
                                     "Message": f"bad output for {kwargs['taskToken']}"}},
                          "SendTaskSuccess")

    async def send_task_failure(self, **kwargs: Any) -> dict[str, Any]:
        return {}

    async def send_task_heartbeat(self, **kwargs: Any) -> dict[str, Any]:
        return {}


async def test_a_refused_answer_lands_in_the_error_store_without_its_token() -> None:
    from core_saga.extension import Outgoing

    store = MemoryStore()
    await store.create_schema()
    dispatcher = OutboxDispatcher(store, {TASK_ANSWER: StepFunctionsSink(
        _RefusingStepFunctions())}, SystemClock())
    async with store.transaction() as tx:
        now = datetime.now(UTC)
        rows = await tx.add_outbox([Outgoing(
            kind=TASK_ANSWER, destination="stepfunctions",
            body=orjson.dumps({"action": "SendTaskSuccess", "taskToken": "secret-token-1",
                               "output": "{}"}),
            message_id="refused", message_type="stepfunctions:SendTaskSuccess",
            correlation_id="o-2")], now, now)
    await dispatcher.deliver(rows)
    (error,) = await store.list_errors()
    assert "InvalidOutput" in error.reason and error.error_type == "DeliveryFailed"
    assert "secret-token-1" not in error.reason and "secret-token-1" not in error.body
    assert orjson.loads(error.body)["taskToken"] == "***"
