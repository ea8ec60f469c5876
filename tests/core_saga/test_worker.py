"""The worker on the in-memory transport: bad input never stops it, failures are
retried then dead-lettered with their reason, stop is graceful, health answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal

import httpx
import pytest

from core_saga import ConsumeContext, Consumer, Envelope, Message, ReceiptExpiredError
from core_saga._settings import WorkerSettings
from core_saga._worker import Worker
from core_saga.persistence import SagaStore
from core_saga.transports import InMemoryTransport, ReceivedMessage, TransportMessage
from examples.quickstart.article_saga import (
    ArticleOrderSaga,
    ChargePayment,
    OrderSubmitted,
    PaymentSucceeded,
)


class Always(Message):
    message_namespace = "t.worker"
    n: int


class Slow(Message):
    message_namespace = "t.worker"
    n: int


class AlwaysFails(Consumer[Always]):
    async def consume(self, ctx: ConsumeContext[Always]) -> None:
        raise RuntimeError(f"cannot handle {ctx.message.n}")


class SlowConsumer(Consumer[Slow]):
    def __init__(self) -> None:
        self.done: list[int] = []

    async def consume(self, ctx: ConsumeContext[Slow]) -> None:
        await asyncio.sleep(0.3)
        self.done.append(ctx.message.n)
        ctx.send("after-slow", Always(n=ctx.message.n))


def settings(**overrides: object) -> WorkerSettings:
    base: dict[str, object] = {"wait_time_seconds": 0, "max_deliveries": 3,
                               "redelivery_base_seconds": 0, "outbox_poll_seconds": 0.05}
    base.update(overrides)
    return WorkerSettings(**base)  # type: ignore[arg-type]


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def put(transport: InMemoryTransport, queue: str, body: bytes) -> None:
    await transport.send_batch(queue, [TransportMessage(body, "x", "raw")])


@pytest.fixture
def transport() -> InMemoryTransport:
    return InMemoryTransport(visibility_timeout=5, max_receive_count=10)


async def test_bad_input_lands_in_the_error_store_and_dlq_while_the_rest_flows(
        store: SagaStore, transport: InMemoryTransport) -> None:
    worker = Worker(settings(), store=store, transport=transport)
    worker.add_saga(ArticleOrderSaga(), queue="order-saga")
    worker.add_consumer(AlwaysFails(), queue="fails")
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    bad = {
        b"{definitely not json": "body is not JSON",
        b'{"messageId": "u1", "messageType": "urn:message:nope:Nope:v1", "message": {}}':
            "unknown message type 'urn:message:nope:Nope:v1'",
        b'{"messageId": "i1", "messageType": "urn:message:article:OrderSubmitted:v1", '
        b'"message": {"orderId": "o-bad", "amount": "lots"}}': "amount: Input should be",
    }
    for body in bad:
        await put(transport, "order-saga", body)
    await put(transport, "fails", Envelope(Always(n=7)).encode())
    good = Envelope(OrderSubmitted(order_id="o-good", amount=Decimal(3)))
    await put(transport, "order-saga", good.encode())

    async def settled() -> bool:
        return (len(transport.dead_letters("order-saga")) == 3
                and len(transport.dead_letters("fails")) == 1
                and transport.depth("charge-payment") == 1)

    await until(settled)
    worker.request_stop()
    await task
    errors = await store.list_errors()
    reasons = {e.body.encode(): e.reason for e in errors if e.endpoint == "order-saga"}
    for body, text in bad.items():
        assert text in reasons[body]
    [failure] = [e for e in errors if e.endpoint == "fails"]
    assert failure.reason == "RuntimeError: cannot handle 7"
    assert failure.message_type == Always.message_urn
    dead_reasons = [reason for _, reason in transport.dead_letters("fails")]
    assert dead_reasons == ["RuntimeError: cannot handle 7"]
    record = await store.get_instance("ArticleOrderSaga", "o-good")
    assert record is not None and record.state == "PaymentPending"
    assert worker.failed >= 4 and worker.handled >= 1


async def test_an_expired_receipt_is_a_warning_and_the_message_comes_back(
        store: SagaStore, caplog: pytest.LogCaptureFixture) -> None:
    """A retry whose receipt the transport no longer accepts (the visibility timeout
    ended first) is logged as a warning, not an error; the next delivery succeeds."""
    calls: list[int] = []

    class FailsOnce(Consumer[Always]):
        async def consume(self, ctx: ConsumeContext[Always]) -> None:
            calls.append(ctx.message.n)
            if len(calls) == 1:
                raise ConnectionError("gateway timeout")

    class ExpiringReceipts(InMemoryTransport):
        async def change_visibility(self, queue: str, message: ReceivedMessage,
                                    timeout_seconds: int) -> None:
            await super().change_visibility(queue, message, 0)
            raise ReceiptExpiredError(f"{queue}: message {message.transport_id}: expired")

    transport = ExpiringReceipts(visibility_timeout=5, max_receive_count=10)
    worker = Worker(settings(max_deliveries=5), store=store, transport=transport)
    worker.add_consumer(FailsOnce(), queue="flaky")
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    await put(transport, "flaky", Envelope(Always(n=1)).encode())

    async def done() -> bool:
        return len(calls) == 2 and transport.depth("flaky") == 0

    with caplog.at_level(logging.WARNING, logger="core_saga"):
        await until(done)
        worker.request_stop()
        await task
    expired = [r for r in caplog.records if "receipt expired before settling" in r.message]
    assert expired and all(r.levelno == logging.WARNING for r in expired)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert transport.dead_letters("flaky") == []


async def test_a_failing_message_is_redelivered_before_it_is_dead_lettered(
        store: SagaStore, transport: InMemoryTransport) -> None:
    calls: list[int] = []

    class FailsTwice(Consumer[Always]):
        async def consume(self, ctx: ConsumeContext[Always]) -> None:
            calls.append(ctx.message.n)
            if len(calls) < 3:
                raise ConnectionError("gateway timeout")

    worker = Worker(settings(max_deliveries=5), store=store, transport=transport)
    worker.add_consumer(FailsTwice(), queue="flaky")
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    await put(transport, "flaky", Envelope(Always(n=1)).encode())

    async def done() -> bool:
        return len(calls) == 3 and transport.depth("flaky") == 0

    await until(done)
    worker.request_stop()
    await task
    assert transport.dead_letters("flaky") == []
    assert await store.list_errors() == []


async def test_stop_finishes_in_flight_messages_and_flushes_the_outbox(
        store: SagaStore, transport: InMemoryTransport) -> None:
    slow = SlowConsumer()
    worker = Worker(settings(), store=store, transport=transport)
    worker.add_consumer(slow, queue="slow")
    for n in range(5):
        await put(transport, "slow", Envelope(Slow(n=n)).encode())
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    await until(lambda: asyncio.sleep(0, worker._in_flight == 5))  # all five taken
    worker.request_stop()
    await task
    assert sorted(slow.done) == [0, 1, 2, 3, 4]
    assert transport.depth("slow") == 0  # deleted, not left to reappear
    assert transport.depth("after-slow") == 5  # what they sent went out before exit
    assert await store.pending_outbox() == []


async def test_health_and_readiness(store: SagaStore, transport: InMemoryTransport) -> None:
    worker = Worker(settings(health_port=0), store=store, transport=transport)
    worker.add_consumer(SlowConsumer(), queue="slow")
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    await until(lambda: asyncio.sleep(0, worker.health is not None and worker._started.is_set()))
    assert worker.health is not None
    base = f"http://127.0.0.1:{worker.health.port}"
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{base}/health")).json() == {"status": "ok"}
        ready = await client.get(f"{base}/ready")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {
            "started": True, "database": True, "transport": True}}
        assert (await client.get(f"{base}/nope")).status_code == 404
    worker.request_stop()
    await task


def test_settings_come_from_the_environment_and_bad_values_fail_by_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPSAGA_CONCURRENCY", "7")
    monkeypatch.setenv("STEPSAGA_DATABASE_URL", "postgresql://db/x")
    loaded = WorkerSettings()
    assert loaded.concurrency == 7 and loaded.database_url == "postgresql://db/x"
    monkeypatch.setenv("STEPSAGA_CONCURRENCY", "0")
    with pytest.raises(ValueError, match="concurrency"):
        WorkerSettings()
    monkeypatch.setenv("STEPSAGA_CONCURRENCY", "3")
    monkeypatch.setenv("STEPSAGA_DATABASE_URL", "mysql://nope")
    with pytest.raises(ValueError, match="database_url"):
        WorkerSettings()


async def test_worker_without_handlers_refuses_to_start(store: SagaStore) -> None:
    with pytest.raises(ValueError, match="hosts nothing"):
        await Worker(settings(), store=store, transport=InMemoryTransport()).run()


async def test_publish_reaches_subscribers_across_queues(
        store: SagaStore, transport: InMemoryTransport) -> None:
    worker = Worker(settings(), store=store, transport=transport)
    worker.add_saga(ArticleOrderSaga(), queue="order-saga")
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    await put(transport, "order-saga",
              Envelope(OrderSubmitted(order_id="p", amount=Decimal(1))).encode())
    # PaymentSucceeded is published by a participant: the topology routes it here.
    assert worker.topology.routes(PaymentSucceeded.message_urn) == ("order-saga",)
    assert worker.topology.routes(ChargePayment.message_urn) == ()

    async def charged() -> bool:
        return transport.depth("charge-payment") == 1

    await until(charged)
    worker.request_stop()
    await task


async def test_a_slow_handler_keeps_its_message_invisible(store: SagaStore) -> None:
    transport = InMemoryTransport(visibility_timeout=2, max_receive_count=10)
    slow_calls: list[int] = []

    class VerySlow(Consumer[Slow]):
        async def consume(self, ctx: ConsumeContext[Slow]) -> None:
            slow_calls.append(ctx.message.n)
            await asyncio.sleep(3.5)  # longer than the visibility timeout

    worker = Worker(settings(visibility_timeout=2), store=store, transport=transport)
    worker.add_consumer(VerySlow(), queue="slow")
    await put(transport, "slow", Envelope(Slow(n=1)).encode())
    task = asyncio.create_task(worker.run(install_signal_handlers=False))

    async def handled() -> bool:
        return worker.handled == 1

    await until(handled)
    worker.request_stop()
    await task
    assert slow_calls == [1]  # extended while it ran: never handed to another receive


async def test_retention_purges_old_inbox_and_outbox_rows(store: SagaStore) -> None:
    from datetime import timedelta

    from core_saga import VirtualClock

    clock = VirtualClock()
    transport = InMemoryTransport()
    worker = Worker(settings(inbox_retention_hours=1, outbox_retention_hours=1),
                    store=store, transport=transport, clock=clock)
    worker.add_saga(ArticleOrderSaga(), queue="order-saga")
    endpoint = worker._pipelines["order-saga"].endpoint
    processed = await endpoint.process(Envelope(OrderSubmitted(order_id="r", amount=1)))
    await worker.dispatcher.deliver(processed.rows)
    assert await worker.purge() == (0, 0)
    clock.advance(timedelta(hours=2))
    assert await worker.purge() == (1, 1)
