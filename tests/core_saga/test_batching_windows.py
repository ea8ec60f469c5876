"""Batching windows follow the arrival rate: a quiet destination is sent to at once, a
busy one fills its batches of ten, and each destination is batched on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from core_saga import (
    ConsumeContext,
    Consumer,
    Envelope,
    Message,
    SystemClock,
    Worker,
    WorkerSettings,
)
from core_saga._batching import ArrivalRate, batch_wait
from core_saga.extension import DeliveryResult, OutboxDispatcher
from core_saga.persistence import MemoryStore, OutboxRow
from core_saga.transports import InMemoryTransport, ReceivedMessage, TransportMessage


def test_the_rate_follows_recent_arrivals() -> None:
    rate = ArrivalRate(tau=1.0)
    assert rate.per_second(0.0) == 0.0
    for n in range(200):  # 100 a second for two seconds
        rate.arrived(1, now=n / 100)
    assert 80 < rate.per_second(2.0) < 110
    assert rate.per_second(10.0) < 0.1  # quiet since: it decays


def test_a_batch_waits_only_when_more_is_expected_in_the_window() -> None:
    assert batch_wait(rate=5, pending=1, capacity=10, max_wait=0.05) == 0.0  # 0.25 expected
    assert batch_wait(rate=1000, pending=1, capacity=10, max_wait=0.05) == \
        (10 - 1) / 1000  # full in 9 ms
    assert batch_wait(rate=100, pending=1, capacity=10, max_wait=0.05) == 0.05  # capped
    assert batch_wait(rate=1000, pending=10, capacity=10, max_wait=0.05) == 0.0  # full
    assert batch_wait(rate=1000, pending=1, capacity=10, max_wait=0.0) == 0.0  # off


class RecordingSink:
    batch_size = 10

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    async def deliver(self, destination: str, rows: Sequence[OutboxRow]
                      ) -> dict[int, DeliveryResult]:
        self.calls.append((destination, len(rows)))
        return {}


def row(n: int, destination: str) -> OutboxRow:
    return OutboxRow(id=n, message_id=f"m-{n}", kind="send", destination=destination,
                     message_type="urn:t", correlation_id=None, body=b"{}",
                     deliver_at=datetime(2000, 1, 1, tzinfo=UTC))


async def test_each_destination_fills_its_own_batches_at_load() -> None:
    sink = RecordingSink()
    dispatcher = OutboxDispatcher(MemoryStore(), {"send": sink}, SystemClock())
    dispatcher.linger = 0.2
    # 100 rows for each of two destinations, interleaved, arriving together (load).
    for n in range(200):
        dispatcher.deliver_soon([row(n, "a" if n % 2 else "b")])
    await dispatcher.drain()
    for destination in "ab":
        sizes = [size for to, size in sink.calls if to == destination]
        assert sum(sizes) == 100
        # Only the first few, before the rate is known, and the last go short of a
        # full batch (one shared buffer of ten would send two halves every time).
        assert sum(1 for size in sizes if size < 10) <= 6, sizes


async def test_a_quiet_destination_is_sent_to_at_once() -> None:
    sink = RecordingSink()
    dispatcher = OutboxDispatcher(MemoryStore(), {"send": sink}, SystemClock())
    dispatcher.linger = 0.2  # a fixed linger would hold the row this long
    dispatcher.deliver_soon([row(1, "a")])
    for _ in range(5):  # let the send task run; no time passes
        await asyncio.sleep(0)
    assert sink.calls == [("a", 1)]


class _AskingTransport(InMemoryTransport):
    """Records how many messages each receive asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[int] = []

    async def receive(self, queue: str, *, max_messages: int = 10,
                      wait_seconds: float = 20.0) -> list[ReceivedMessage]:
        taken = await super().receive(queue, max_messages=max_messages,
                                      wait_seconds=wait_seconds)
        if taken:
            self.asked.append(max_messages)
        return taken


class Slow(Message):
    message_namespace = "t.windows"
    n: int


class SlowJobs(Consumer[Slow]):
    def __init__(self) -> None:
        self.done: set[int] = set()

    async def consume(self, ctx: ConsumeContext[Slow]) -> None:
        await asyncio.sleep(0.02)
        self.done.add(ctx.message.n)


async def _receives(linger: float) -> list[int]:
    transport = _AskingTransport()
    jobs = SlowJobs()
    worker = Worker(WorkerSettings(database_url="memory://", wait_time_seconds=0,
                                   concurrency=16, receive_linger_seconds=linger),
                    store=MemoryStore(), transport=transport)
    worker.add_consumer(jobs, queue="slow")
    for start in range(0, 60, 10):
        await transport.send_batch("slow", [
            TransportMessage(Envelope(Slow(n=n)).encode(), f"s-{n}", Slow.message_urn)
            for n in range(start, start + 10)])
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(jobs.done) < 60:
            assert asyncio.get_running_loop().time() < deadline, "not all handled"
            await asyncio.sleep(0.01)
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)
    return transport.asked


async def test_a_busy_queue_waits_for_room_for_a_whole_batch() -> None:
    # 16 in hand at most: after a receive of 10, room for 6 only. The queue waits (up to
    # the receive window) for room for 10 rather than take the 6 and split its batches.
    assert set(await _receives(linger=2.0)) == {10}


async def test_without_a_window_the_queue_takes_what_room_it_has() -> None:
    assert min(await _receives(linger=0.0)) < 10
