"""Delivered rows are marked dispatched in as few statements as the load allows: the
deliveries that finish while a mark is under way share the next one, and a delivery
returns only once its own rows are marked."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from core_saga import SystemClock
from core_saga.extension import DeliveryResult, OutboxDispatcher
from core_saga.persistence import MemoryStore, OutboxRow


class NullSink:
    batch_size = 10

    async def deliver(self, destination: str, rows: Sequence[OutboxRow]
                      ) -> dict[int, DeliveryResult]:
        return {}


class GatedStore(MemoryStore):
    """Records each mark statement; the first waits until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[list[int]] = []
        self.gate = asyncio.Event()
        self.fail_next = False

    async def mark_dispatched(self, ids: Sequence[int], now: datetime) -> None:
        self.marks.append(sorted(ids))
        if len(self.marks) == 1:
            await self.gate.wait()
        if self.fail_next:
            raise ConnectionRefusedError("database unreachable")
        await super().mark_dispatched(ids, now)


def _row(n: int) -> OutboxRow:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return OutboxRow(id=n, message_id=f"m-{n}", kind="send", destination="q",
                     message_type="urn:message:t", correlation_id=None, body="{}",
                     deliver_at=at, created_at=at)


async def test_deliveries_during_a_mark_share_the_next_one() -> None:
    store = GatedStore()
    dispatcher = OutboxDispatcher(store, {"send": NullSink()}, SystemClock())
    first = asyncio.create_task(dispatcher.deliver([_row(1)]))
    while not store.marks:
        await asyncio.sleep(0)
    later = [asyncio.create_task(dispatcher.deliver([_row(n)])) for n in range(2, 7)]
    for _ in range(20):
        await asyncio.sleep(0)
    # the first mark is under way: nobody has returned, the later ones wait their turn
    assert not any(t.done() for t in (first, *later))
    store.gate.set()
    await asyncio.gather(first, *later)
    assert store.marks == [[1], [2, 3, 4, 5, 6]]
    assert dispatcher.sent == 6


async def test_a_lone_delivery_is_marked_at_once() -> None:
    store = GatedStore()
    store.gate.set()
    dispatcher = OutboxDispatcher(store, {"send": NullSink()}, SystemClock())
    await dispatcher.deliver([_row(1), _row(2)])
    await dispatcher.deliver([_row(3)])
    assert store.marks == [[1, 2], [3]]


async def test_a_failed_mark_fails_every_delivery_it_held() -> None:
    store = GatedStore()
    dispatcher = OutboxDispatcher(store, {"send": NullSink()}, SystemClock())
    first = asyncio.create_task(dispatcher.deliver([_row(1)]))
    while not store.marks:
        await asyncio.sleep(0)
    later = [asyncio.create_task(dispatcher.deliver([_row(n)])) for n in (2, 3)]
    for _ in range(20):
        await asyncio.sleep(0)
    store.fail_next = True
    store.gate.set()
    results = await asyncio.gather(first, *later, return_exceptions=True)
    # each caller learns its rows were not marked (the poller sends them again later)
    assert [type(r) for r in results] == [ConnectionRefusedError] * 3
    assert store.marks == [[1], [2, 3]]
    assert dispatcher.sent == 0


async def test_a_cancelled_delivery_does_not_hold_up_the_others() -> None:
    store = GatedStore()
    dispatcher = OutboxDispatcher(store, {"send": NullSink()}, SystemClock())
    blocker = asyncio.create_task(dispatcher.deliver([_row(1)]))
    while not store.marks:
        await asyncio.sleep(0)
    second = asyncio.create_task(dispatcher.deliver([_row(2)]))
    third = asyncio.create_task(dispatcher.deliver([_row(3)]))
    for _ in range(20):
        await asyncio.sleep(0)
    blocker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocker
    # the cancelled first mark left row 1 to the poller; rows 2 and 3 share one mark
    await asyncio.gather(second, third)
    assert store.marks == [[1], [2, 3]]
