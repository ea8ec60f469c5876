"""A transport wrapper that adds a service's latency to every call: to model Amazon SQS
over a fast local transport (capacity planning, ``benchmarks/sqs_model.py``)."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ._base import ReceivedMessage, SendFailure, Transport, TransportMessage

_RANGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:-\s*(\d+(?:\.\d+)?))?\s*ms\s*$")


@dataclass(frozen=True, slots=True)
class Latency:
    """A call's added latency: uniform between `low` and `high` seconds."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.high:
            raise ValueError(f"latency needs 0 <= low <= high, not {self.low}..{self.high}")

    @classmethod
    def parse(cls, text: str) -> Latency:
        """``"10-20ms"`` (uniform between) or ``"15ms"`` (fixed)."""
        found = _RANGE.match(text)
        if found is None:
            raise ValueError(f"latency {text!r}: write e.g. 10-20ms or 15ms")
        low = float(found.group(1)) / 1000
        high = float(found.group(2)) / 1000 if found.group(2) else low
        return cls(low, high)

    def draw(self, rng: random.Random) -> float:
        return self.low if self.low == self.high else rng.uniform(self.low, self.high)

    def __str__(self) -> str:
        low, high = self.low * 1000, self.high * 1000
        return f"{low:g}ms" if low == high else f"{low:g}-{high:g}ms"


class LatencyTransport:
    """Wraps `inner` (usually :class:`InMemoryTransport`) and holds each call for a
    latency drawn from its distribution before answering, as a remote queue service
    would: by default receive 10–20 ms, send and delete batches 5–15 ms, the other
    calls 5–15 ms — in the range of SQS measured from EC2 in the same region. A
    receive that has to wait for a message (long poll) waits as the inner transport
    does, then the latency is added. Counts calls by operation (``calls``)."""

    def __init__(self, inner: Transport, *, receive: Latency = Latency(0.010, 0.020),
                 send: Latency = Latency(0.005, 0.015),
                 delete: Latency = Latency(0.005, 0.015),
                 other: Latency = Latency(0.005, 0.015), seed: int | None = None) -> None:
        self.inner = inner
        self.receive_latency = receive
        self.send_latency = send
        self.delete_latency = delete
        self.other_latency = other
        self._rng = random.Random(seed)
        self.calls: dict[str, int] = {}

    @property
    def max_message_bytes(self) -> int:
        return self.inner.max_message_bytes

    @property
    def total_calls(self) -> int:
        """Calls made so far."""
        return sum(self.calls.values())

    async def _wait(self, operation: str, latency: Latency) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        await asyncio.sleep(latency.draw(self._rng))

    async def send_batch(self, queue: str, messages: Sequence[TransportMessage]
                         ) -> list[SendFailure]:
        await self._wait("SendMessageBatch", self.send_latency)
        return await self.inner.send_batch(queue, messages)

    async def receive(self, queue: str, *, max_messages: int = 10,
                      wait_seconds: float = 20.0) -> list[ReceivedMessage]:
        taken = await self.inner.receive(queue, max_messages=max_messages,
                                         wait_seconds=wait_seconds)
        await self._wait("ReceiveMessage", self.receive_latency)
        return taken

    async def delete_batch(self, queue: str, messages: Sequence[ReceivedMessage]) -> None:
        await self._wait("DeleteMessageBatch", self.delete_latency)
        await self.inner.delete_batch(queue, messages)

    async def change_visibility(self, queue: str, message: ReceivedMessage,
                                timeout_seconds: int) -> None:
        await self._wait("ChangeMessageVisibility", self.other_latency)
        await self.inner.change_visibility(queue, message, timeout_seconds)

    async def dead_letter(self, queue: str, message: ReceivedMessage, reason: str) -> None:
        await self._wait("DeadLetter", self.other_latency)
        await self.inner.dead_letter(queue, message, reason)

    async def redrive_limit(self, queue: str) -> int | None:
        return await self.inner.redrive_limit(queue)

    async def close(self) -> None:
        await self.inner.close()
