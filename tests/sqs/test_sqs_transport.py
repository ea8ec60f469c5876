"""The SQS transport against real queues on the emulator."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import orjson
import pytest

from core_saga import ReceiptExpiredError
from core_saga.emulator import Emulator
from core_saga.transports import (
    DEAD_LETTER_REASON,
    SqsConfig,
    SqsTransport,
    TransportMessage,
    sqs_transport,
)


@pytest.fixture
async def sqs(emulator: Emulator) -> AsyncIterator[SqsTransport]:
    config = SqsConfig(region=emulator.region, endpoint_url=emulator.endpoint_url,
                       aws_access_key_id="testing", aws_secret_access_key="testing",
                       max_message_bytes=4096)
    async with sqs_transport(config) as transport:
        yield transport


def msg(n: int, *, correlation: str | None = None, size: int = 0) -> TransportMessage:
    body = orjson.dumps({"n": n, "pad": "x" * size})
    return TransportMessage(body, f"id-{n}-{uuid.uuid4().hex[:6]}", "urn:message:t:M:v1",
                            correlation, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")


async def test_batches_carry_type_and_traceparent_and_delete_in_batches(
        emulator: Emulator, sqs: SqsTransport) -> None:
    queue = f"tq-{uuid.uuid4().hex[:6]}"
    emulator.create_queue(queue)
    assert await sqs.send_batch(queue, [msg(i) for i in range(10)]) == []
    received = []
    while len(received) < 10:
        received += await sqs.receive(queue, max_messages=10, wait_seconds=1)
    assert sorted(orjson.loads(m.body)["n"] for m in received) == list(range(10))
    first = received[0]
    assert first.attributes["MessageType"] == "urn:message:t:M:v1"
    assert first.attributes["traceparent"].startswith("00-0af765")
    assert first.receive_count == 1
    await sqs.delete_batch(queue, received)
    assert await sqs.receive(queue, wait_seconds=0) == []
    assert sqs.calls["SendMessageBatch"] == 1 and sqs.calls["DeleteMessageBatch"] == 1


async def test_oversize_messages_are_refused_at_send_with_a_clear_error(
        emulator: Emulator, sqs: SqsTransport) -> None:
    queue = f"tq-{uuid.uuid4().hex[:6]}"
    emulator.create_queue(queue)
    big, small = msg(1, size=5000), msg(2)
    [failure] = await sqs.send_batch(queue, [big, small])
    assert failure.permanent and failure.message_id == big.message_id
    assert f"to '{queue}' is" in failure.reason and "over the limit of 4096 bytes" in failure.reason
    [only] = await sqs.receive(queue, wait_seconds=1)
    assert orjson.loads(only.body)["n"] == 2


async def test_released_message_comes_back_and_dead_letter_keeps_the_reason(
        emulator: Emulator, sqs: SqsTransport) -> None:
    queue = f"tq-{uuid.uuid4().hex[:6]}"
    info = emulator.create_queue(queue)
    await sqs.send_batch(queue, [msg(1)])
    [first] = await sqs.receive(queue, wait_seconds=1)
    await sqs.change_visibility(queue, first, 0)  # redelivery now
    [again] = await sqs.receive(queue, wait_seconds=1)
    assert again.receive_count == 2
    await sqs.dead_letter(queue, again, "ValueError: bad amount")
    assert await sqs.receive(queue, wait_seconds=0) == []
    dead = emulator.boto3_client("sqs").receive_message(
        QueueUrl=info.dlq_url, MessageAttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
    assert dead[0]["Body"] == again.body.decode()
    assert dead[0]["MessageAttributes"][DEAD_LETTER_REASON]["StringValue"] == (
        "ValueError: bad amount")


async def test_a_receipt_no_longer_ours_is_reported_as_expired(
        emulator: Emulator, sqs: SqsTransport) -> None:
    queue = f"tq-{uuid.uuid4().hex[:6]}"
    emulator.create_queue(queue)
    await sqs.send_batch(queue, [msg(1)])
    [first] = await sqs.receive(queue, wait_seconds=1)
    await sqs.delete_batch(queue, [first])  # settled elsewhere, e.g. by a faster delivery
    with pytest.raises(ReceiptExpiredError, match=f"{queue}: message {first.transport_id}"):
        await sqs.change_visibility(queue, first, 30)


async def test_fifo_queues_group_by_correlation_and_dedupe_by_message_id(
        emulator: Emulator, sqs: SqsTransport) -> None:
    queue = f"tf-{uuid.uuid4().hex[:6]}.fifo"
    emulator.create_queue(queue, fifo=True)
    one = msg(1, correlation="order-1")
    assert await sqs.send_batch(queue, [one, one, msg(2, correlation="order-1")]) == []
    received = []
    for _ in range(5):
        got = await sqs.receive(queue, wait_seconds=1)
        received += got
        await sqs.delete_batch(queue, got)
        if len(received) >= 2:
            break
    assert [orjson.loads(m.body)["n"] for m in received] == [1, 2]  # in order, deduped


async def test_queue_urls_are_looked_up_once_and_urls_pass_through(
        emulator: Emulator, sqs: SqsTransport) -> None:
    queue = f"tq-{uuid.uuid4().hex[:6]}"
    info = emulator.create_queue(queue)
    await sqs.send_batch(queue, [msg(1)])
    await sqs.send_batch(queue, [msg(2)])
    await sqs.send_batch(info.url, [msg(3)])
    assert sqs.calls["GetQueueUrl"] == 1
