"""The worker over real SQS queues: bad input ends in the DLQ and the error store,
with the reason, and good messages keep flowing."""

from __future__ import annotations

import asyncio
import os
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from core_saga import ConsumeContext, Consumer, Envelope, Message, Worker, WorkerSettings
from core_saga.emulator import Emulator
from core_saga.persistence import SqlStore
from core_saga.transports import DEAD_LETTER_REASON, SqsTransport
from examples.quickstart.article_saga import ArticleOrderSaga, OrderSubmitted


class Poison(Message):
    message_namespace = "t.sqsworker"
    n: int


class AlwaysRaises(Consumer[Poison]):
    async def consume(self, ctx: ConsumeContext[Poison]) -> None:
        raise ValueError(f"poison {ctx.message.n}")


@pytest.mark.emulator
async def test_bad_input_over_sqs_lands_in_the_dlq_with_its_reason(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    prefix = f"w{uuid.uuid4().hex[:5]}-"
    saga_q = emulator.create_queue(prefix + "order-saga", max_receive_count=10)
    poison_q = emulator.create_queue(prefix + "poison", max_receive_count=10)
    emulator.create_queue(prefix + "charge-payment")
    settings = WorkerSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'w.db'}",
                              aws_endpoint_url=emulator.endpoint_url, queue_prefix=prefix,
                              wait_time_seconds=1, max_deliveries=2,
                              redelivery_base_seconds=0, max_message_bytes=4096)
    store = SqlStore.from_url(settings.database_url)
    await store.create_schema()
    transport = await SqsTransport.connect(settings.sqs())
    worker = Worker(settings, store=store, transport=transport)
    oversize = ('{"messageId": "big", "messageType": "urn:message:article:OrderSubmitted:v1", '
                '"message": {"orderId": "big", "amount": "1", "note": "' + "x" * 5000 + '"}}')
    worker.add_saga(ArticleOrderSaga(), queue="order-saga")
    worker.add_consumer(AlwaysRaises(), queue="poison")
    sqs = emulator.boto3_client("sqs")
    bodies = {
        "{broken": "body is not JSON",
        '{"messageId": "u", "messageType": "urn:message:x:Nope:v1", "message": {}}':
            "unknown message type",
        '{"messageId": "i", "messageType": "urn:message:article:OrderSubmitted:v1", '
        '"message": {"orderId": 5}}': "amount: Field required",
        # Over the worker's 4096-byte limit: refused before it is decoded.
        oversize: f"the body is {len(oversize)} bytes, over the endpoint's limit of 4096",
    }
    for body in bodies:
        sqs.send_message(QueueUrl=saga_q.url, MessageBody=body)
    sqs.send_message(QueueUrl=poison_q.url, MessageBody=Envelope(Poison(n=1)).encode().decode())
    good = Envelope(OrderSubmitted(order_id="fine", amount=Decimal(1)))
    sqs.send_message(QueueUrl=saga_q.url, MessageBody=good.encode().decode())
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    try:
        async def dead(url: str, n: int) -> list[dict[str, object]]:
            found: list[dict[str, object]] = []
            for _ in range(60):
                got = await asyncio.to_thread(sqs.receive_message, QueueUrl=url,
                                              MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                              MessageAttributeNames=["All"])
                found += got.get("Messages", [])
                if len(found) >= n:
                    return found
            raise AssertionError(f"only {len(found)} dead letters on {url}")

        saga_dead = await dead(saga_q.dlq_url or "", 4)
        poison_dead = await dead(poison_q.dlq_url or "", 1)
    finally:
        worker.request_stop()
        await task
        await transport.close()
    reasons = {m["Body"]: m["MessageAttributes"][DEAD_LETTER_REASON]["StringValue"]  # type: ignore[index]
               for m in saga_dead}
    for body, text in bodies.items():
        assert text in reasons[body]
    assert poison_dead[0]["MessageAttributes"][DEAD_LETTER_REASON][  # type: ignore[index]
        "StringValue"] == "ValueError: poison 1"
    errors = await store.list_errors()
    assert len(errors) == 5 and all(e.reason and e.body for e in errors)
    assert {e.error_type for e in errors} >= {"OversizeMessageError", "ValueError"}
    assert await store.get_instance("ArticleOrderSaga", "big") is None
    record = await store.get_instance("ArticleOrderSaga", "fine")
    assert record is not None and record.state == "PaymentPending"
    await store.close()
    assert os.environ["MOTO_PORT"] == str(emulator.port)
