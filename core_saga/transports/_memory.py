"""An in-memory transport with the semantics of SQS that the engine relies on."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from .._errors import MessageTooLargeError
from ._base import (
    DEFAULT_MAX_MESSAGE_BYTES,
    ReceivedMessage,
    SendFailure,
    TransportMessage,
)


@dataclass(slots=True)
class _Entry:
    id: str
    body: bytes
    attributes: dict[str, str]
    visible_at: float
    receive_count: int = 0
    receipt: int = 0


@dataclass(slots=True)
class _Queue:
    entries: dict[str, _Entry] = field(default_factory=dict)
    dead: list[tuple[bytes, str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class InMemoryTransport:
    """Queues in process memory: visibility timeouts, receive counts, a dead-letter
    list per queue after `max_receive_count` receives, and the size limit."""

    def __init__(self, *, visibility_timeout: float = 30.0, max_receive_count: int = 10,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.visibility_timeout = visibility_timeout
        self.max_receive_count = max_receive_count
        self.max_message_bytes = max_message_bytes
        self._queues: dict[str, _Queue] = {}
        self._ids = itertools.count(1)
        self.calls = 0

    async def redrive_limit(self, queue: str) -> int | None:
        """Receives before a message goes to the dead letters."""
        return self.max_receive_count

    def _queue(self, name: str) -> _Queue:
        return self._queues.setdefault(name, _Queue())

    async def send_batch(self, queue: str, messages: Sequence[TransportMessage]
                         ) -> list[SendFailure]:
        self.calls += 1
        q = self._queue(queue)
        now = time.monotonic()
        failures = []
        for m in messages:
            if len(m.body) > self.max_message_bytes:
                failures.append(SendFailure(m.message_id, str(MessageTooLargeError(
                    queue, len(m.body), self.max_message_bytes, m.message_type)), True))
                continue
            entry_id = f"m-{next(self._ids)}"
            attributes = {"MessageType": m.message_type}
            if m.traceparent:
                attributes["traceparent"] = m.traceparent
            q.entries[entry_id] = _Entry(entry_id, m.body, attributes, now + m.delay_seconds)
        q.changed.set()
        return failures

    async def receive(self, queue: str, *, max_messages: int = 10,
                      wait_seconds: float = 20.0) -> list[ReceivedMessage]:
        self.calls += 1
        q = self._queue(queue)
        deadline = time.monotonic() + wait_seconds
        while True:
            now = time.monotonic()
            taken: list[ReceivedMessage] = []
            for entry in list(q.entries.values()):
                if entry.visible_at > now:
                    continue
                if entry.receive_count >= self.max_receive_count:
                    del q.entries[entry.id]
                    q.dead.append((entry.body, "max receive count exceeded"))
                    continue
                entry.receive_count += 1
                entry.receipt += 1
                entry.visible_at = now + self.visibility_timeout
                taken.append(ReceivedMessage(entry.body, (entry.id, entry.receipt),
                                             entry.receive_count, entry.id,
                                             dict(entry.attributes)))
                if len(taken) >= max_messages:
                    break
            if taken or now >= deadline:
                await asyncio.sleep(0)  # a receive is always a suspension point
                return taken
            q.changed.clear()
            soonest = min((e.visible_at for e in q.entries.values()), default=deadline)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(q.changed.wait(),
                                       timeout=max(0.0, min(deadline, soonest) - now))

    async def delete_batch(self, queue: str, messages: Sequence[ReceivedMessage]) -> None:
        self.calls += 1
        q = self._queue(queue)
        for m in messages:
            entry_id, receipt = m.handle
            entry = q.entries.get(entry_id)
            if entry is not None and entry.receipt == receipt:
                del q.entries[entry_id]

    async def change_visibility(self, queue: str, message: ReceivedMessage,
                                timeout_seconds: int) -> None:
        self.calls += 1
        entry = self._queue(queue).entries.get(message.handle[0])
        if entry is not None:
            entry.visible_at = time.monotonic() + timeout_seconds
            self._queue(queue).changed.set()

    async def dead_letter(self, queue: str, message: ReceivedMessage, reason: str) -> None:
        self.calls += 1
        q = self._queue(queue)
        q.entries.pop(message.handle[0], None)
        q.dead.append((message.body, reason))

    async def close(self) -> None:
        return None

    # -- inspection (tests) --------------------------------------------------------
    def depth(self, queue: str) -> int:
        """Messages on `queue`, visible or not."""
        return len(self._queue(queue).entries)

    def peek(self, queue: str) -> list[bytes]:
        """The bodies on `queue`, without receiving them."""
        return [e.body for e in self._queue(queue).entries.values()]

    def dead_letters(self, queue: str) -> list[tuple[bytes, str]]:
        """What was dead-lettered from `queue`, with the reasons."""
        return list(self._queue(queue).dead)

    def queues(self) -> list[str]:
        return list(self._queues)
