"""Retrying a hand-off, end to end on the emulator: a hand-off put on a bus with no rule
(a disabled or missing rule) starts nothing; once the rule is there, the operator's
retry puts the same entry (same hand-off id) on the bus again, and it arrives. Audited;
a second retry after the workflow started is refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge import (
    EVENTBRIDGE,
    AwsClients,
    EventBridgeSink,
    HandOffConfig,
    SupervisedState,
    hand_off,
    supervision_started_event,
)
from bridge.audit import AuditLog
from bridge.console import ConsoleSettings, create_app
from bridge.contracts import SupervisionStarted
from core_saga import (
    AwsConfig,
    Envelope,
    Event,
    Message,
    Saga,
    State,
    Worker,
    WorkerSettings,
)
from core_saga.emulator import Emulator
from core_saga.emulator.pytest_plugin import AwsScope
from core_saga.persistence import SagaStore, store_from_url
from core_saga.transports import SqsTransport
from tests.console.support import ORIGIN, await_for, bearer, sqlite_url

OPERATOR = "operator-token-789"
TOKENS = {OPERATOR: "olga:operator"}
CONFIG: dict[str, HandOffConfig] = {}


class Held(Message):
    message_namespace = "t.retry"
    order_id: str


class Released(Message):
    message_namespace = "t.retry"
    order_id: str


def _started(ctx: Any) -> None:
    record = ctx.saga.handoff(ctx.message.handoff_id)
    if record is not None:
        record.execution_arn = ctx.message.execution_arn
        record.started_at = ctx.message.started_at


class HeldSaga(Saga[SupervisedState]):
    saga_name = "Held"
    reviewing = State()
    done = State(terminal=True)
    held = Event(Held, correlate_by=lambda m: m.order_id)
    released = Event(Released, correlate_by=lambda m: m.order_id)
    supervision_started = supervision_started_event()

    def define(self) -> None:
        self.initially(self.when(self.held).activity(hand_off(
            "ManualReview", reason="held for review", payload={"orderId": "x"},
            config=lambda ctx: CONFIG["config"], then=self.reviewing)))
        self.during(self.reviewing, self.when(self.released).transition_to(self.done),
                    self.when(self.supervision_started).then(_started))


@pytest.fixture
async def worker(emulator: Emulator, aws: AwsScope, tmp_path: Path
                 ) -> AsyncIterator[tuple[str, SagaStore, Any]]:
    queue = aws.create_queue("held", dlq=False)
    CONFIG["config"] = HandOffConfig(bus=aws.create_bus("bus"), reply_to=queue.url)
    url = sqlite_url(tmp_path)
    settings = WorkerSettings(database_url=url, aws_endpoint_url=emulator.endpoint_url,
                              queue_prefix=aws.name(""), wait_time_seconds=1,
                              outbox_poll_seconds=0.2)
    store = store_from_url(url)
    await store.create_schema()
    await AuditLog.open(store).create_table()
    transport = await SqsTransport.connect(settings.sqs())
    config = AwsConfig(endpoint_url=emulator.endpoint_url, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    async with AwsClients(config) as clients:
        host = Worker(settings, store=store, transport=transport)
        host.add_saga(HeldSaga(), queue="held")
        host.add_sink(EVENTBRIDGE, EventBridgeSink(await clients.client("events")))
        task = asyncio.create_task(host.run(install_signal_handlers=False))
        try:
            yield url, store, queue
        finally:
            host.request_stop()
            await task
            await transport.close()
            await store.close()


async def test_a_lost_hand_off_is_published_again_with_its_id(
        worker: tuple[str, SagaStore, Any], emulator: Emulator, aws: AwsScope) -> None:
    url, store, queue = worker
    sqs = aws.client("sqs")
    sqs.send_message(QueueUrl=queue.url, MessageBody=Envelope(
        Held(order_id="h-1"), correlation_id="h-1").encode().decode())

    async def put() -> bool:  # the entry went to a bus with no rule: lost
        rows = await store.outbox_for("h-1")
        return any(r.kind == EVENTBRIDGE and r.dispatched_at for r in rows)

    await await_for(put, what="the hand-off put on the bus")
    record = await store.get_instance("Held", "h-1")
    assert record is not None
    handoff_id = record.data["handoffs"][0]["handoff_id"]

    seen = aws.create_queue("seen", dlq=False)
    events = aws.client("events")
    events.put_rule(Name=aws.name("r"), EventBusName=CONFIG["config"].bus,
                    EventPattern=json.dumps({"detail-type": ["SupervisionRequested"]}))
    events.put_targets(Rule=aws.name("r"), EventBusName=CONFIG["config"].bus,
                       Targets=[{"Id": "q", "Arn": seen.arn}])

    settings = ConsoleSettings(database_url=url, console_tokens=TOKENS,
                               aws_endpoint_url=emulator.endpoint_url)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings)),
                                 base_url=ORIGIN) as client:
        detail = (await client.get("/api/orders/h-1", headers=bearer(OPERATOR))).json()
        assert detail["status"].startswith("hand-off to ManualReview not started for ")
        done = await client.post("/api/orders/h-1/retry-handoff", headers=bearer(OPERATOR),
                                 json={"reason": "rule restored"})
        assert done.status_code == 200 and done.json()["changed"] is True, done.text

        async def arrived() -> Any:
            got = await asyncio.to_thread(sqs.receive_message, QueueUrl=seen.url,
                                          WaitTimeSeconds=1)
            return got.get("Messages")

        (message,) = await await_for(arrived, what="the hand-off on the restored rule")
        assert json.loads(message["Body"])["detail"]["handoffId"] == handoff_id

        # The workflow starts: a retry now sends nothing.
        sqs.send_message(QueueUrl=queue.url, MessageBody=Envelope(SupervisionStarted(
            handoff_id=handoff_id, saga_type="Held", correlation_id="h-1",
            workflow="ManualReview", reason="held for review", payload={},
            reply_to=queue.url, started_at=datetime.now(UTC),
            execution_arn="arn:aws:states:us-east-1:123456789012:execution:mr:x-1"),
            correlation_id="h-1").encode().decode())

        async def started() -> bool:
            found = await store.get_instance("Held", "h-1")
            return bool(found and found.data["handoffs"][0].get("execution_arn"))

        await await_for(started, what="SupervisionStarted applied")
        again = await client.post("/api/orders/h-1/retry-handoff", headers=bearer(OPERATOR),
                                  json={"reason": "again"})
        assert again.status_code == 200 and again.json()["changed"] is False
        assert "has started" in again.json()["message"]
    entries, _ = await AuditLog.open(store).entries(correlation_id="h-1")
    assert [(e.action, e.outcome, e.reason) for e in reversed(entries)] == [
        ("retry-handoff", "republished", "rule restored"),
        ("retry-handoff", "unchanged", "again")]
