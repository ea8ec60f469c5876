"""Batching windows follow the arrival rate: a quiet destination is sent to at once, a
busy one fills its batches of ten, and each destination is batched on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from core_saga import SystemClock
from core_saga._batching import ArrivalRate, batch_wait
from core_saga.extension import DeliveryResult, OutboxDispatcher
from core_saga.persistence import MemoryStore, OutboxRow


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
