"""The outbox dispatcher: sends what was committed, marks it sent, retries with backoff."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Protocol

import orjson

from ._clock import Clock
from ._context import SEND, UNROUTED
from .persistence import ErrorRecord, OutboxRow, SagaStore
from .transports import Transport, TransportMessage

log = logging.getLogger("core_saga.outbox")


DONE_WITH_NOTE = "done:"
"""A sink's reason starting with this means the row is finished without the effect
(a task-token answer whose task is gone): it is marked dispatched, the note kept."""


class OutboxSink(Protocol):
    """Delivers outbox rows of one kind (queue sends, EventBridge entries, task answers)."""

    batch_size: int

    async def deliver(self, destination: str, rows: Sequence[OutboxRow]) -> dict[int, str]:
        """Deliver `rows` to `destination`; the failed row ids with their reasons.
        A reason starting with ``permanent:`` is not retried; one starting with
        ``done:`` is not a failure: the row is finished, and the note is kept on it."""
        ...


class TransportSink:
    """The sink for ``send`` rows: batched sends on the transport."""

    batch_size = 10

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def deliver(self, destination: str, rows: Sequence[OutboxRow]) -> dict[int, str]:
        messages = []
        for row in rows:
            traceparent = None
            if b"traceparent" in row.body:
                headers = orjson.loads(row.body).get("headers") or {}
                traceparent = headers.get("traceparent")
            messages.append(TransportMessage(row.body, row.message_id, row.message_type,
                                             row.correlation_id, traceparent))
        failures = await self.transport.send_batch(destination, messages)
        by_id = {row.message_id: row.id for row in rows}
        return {by_id[f.message_id]: ("permanent: " if f.permanent else "") + f.reason
                for f in failures}


class OutboxDispatcher:
    """Sends committed outbox rows through their sinks.

    Rows a process has just committed are delivered by it at once (:meth:`deliver`);
    the rest — timers that came due, rows left by a crashed process after their lease
    ran out, retries — are found by :meth:`run_due`, which :meth:`run` calls in a loop.
    A failed row is retried with exponential backoff up to `max_attempts`, then kept
    in the error store with its reason.
    """

    def __init__(self, store: SagaStore, sinks: Mapping[str, OutboxSink], clock: Clock, *,
                 claim_limit: int = 200, lease: timedelta = timedelta(seconds=60),
                 max_attempts: int = 10, base_backoff: timedelta = timedelta(seconds=1),
                 max_backoff: timedelta = timedelta(minutes=5)) -> None:
        self.store = store
        self.sinks = dict(sinks)
        self.clock = clock
        self.claim_limit = claim_limit
        self.lease = lease
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self._wake = asyncio.Event()
        self.sent = 0
        self._buffer: list[OutboxRow] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()
        self.linger = 0.01
        """Seconds :meth:`deliver_soon` waits to fill a batch."""

    def add_sink(self, kind: str, sink: OutboxSink) -> None:
        """Register the sink for rows of `kind`."""
        self.sinks[kind] = sink

    def notify(self) -> None:
        """Wake the loop (a timer may be due sooner than the next poll)."""
        self._wake.set()

    def deliver_soon(self, rows: Sequence[OutboxRow]) -> None:
        """Send committed `rows` within `linger` seconds, batched with rows other
        messages commit meanwhile (fewer API calls at load). Safe to lose on a crash:
        the rows are committed and leased, and the poller sends them when the lease ends."""
        self._buffer.extend(rows)
        if len(self._buffer) >= 10:
            self._flush_buffer()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.linger,
                                                                self._flush_buffer)

    def _flush_buffer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        rows, self._buffer = self._buffer, []
        if rows:
            task = asyncio.create_task(self._deliver_logged(rows))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    async def _deliver_logged(self, rows: list[OutboxRow]) -> None:
        try:
            await self.deliver(rows)
        except Exception:
            log.exception("outbox: batched dispatch failed; the poller will retry")

    async def drain(self) -> None:
        """Send what :meth:`deliver_soon` holds, and wait for sends under way."""
        self._flush_buffer()
        if self._flushing:
            await asyncio.gather(*self._flushing)

    async def deliver(self, rows: Sequence[OutboxRow]) -> None:
        """Send `rows` now, grouped by sink and destination, and record the results."""
        now = self.clock.now()
        due = [r for r in rows if r.deliver_at <= now]
        if not due:
            return
        groups: dict[tuple[str, str], list[OutboxRow]] = defaultdict(list)
        for row in due:
            groups[(row.kind, row.destination)].append(row)
        done: list[int] = []
        for (kind, destination), group in groups.items():
            if kind == "publish":
                done.extend(r.id for r in group)  # published with no subscriber
                continue
            sink = self.sinks.get(kind)
            if sink is None:
                for row in group:
                    await self._failed(row, f"permanent: no sink for outbox kind {kind!r}")
                continue
            for start in range(0, len(group), sink.batch_size):
                chunk = group[start:start + sink.batch_size]
                try:
                    failed = await sink.deliver(destination, chunk)
                except Exception as exc:  # the whole batch failed: retry it later
                    log.warning("outbox: %s to %s failed: %s", kind, destination, exc)
                    failed = {r.id: f"{type(exc).__name__}: {exc}" for r in chunk}
                for row in chunk:
                    reason = failed.get(row.id)
                    if reason is not None and reason.startswith(DONE_WITH_NOTE):
                        # delivered as far as it ever can be: keep the note on the row
                        now_ = self.clock.now()
                        await self.store.mark_attempt_failed(row.id, reason, now_, now_)
                        done.append(row.id)
                    elif reason is not None:
                        await self._failed(row, reason)
                    else:
                        done.append(row.id)
        if done:
            await self.store.mark_dispatched(done, self.clock.now())
            self.sent += len(done)

    async def _failed(self, row: OutboxRow, reason: str) -> None:
        now = self.clock.now()
        attempts = row.attempts + 1
        if reason.startswith("permanent:") or attempts >= self.max_attempts:
            log.error("outbox: row %s (%s to %s) failed for good: %s", row.id,
                      row.message_type, row.destination, reason)
            await self.store.mark_attempt_failed(row.id, reason, None, now)
            # A sink may hide secrets of its rows (a task token) from the error store.
            redact = getattr(self.sinks.get(row.kind), "redact_body", None)
            body = redact(row.body) if redact is not None else row.body.decode(errors="replace")
            await self.store.add_error(ErrorRecord(
                endpoint=f"outbox:{row.kind}:{row.destination}", error_type="DeliveryFailed",
                reason=reason, body=body, at=now,
                message_id=row.message_id, message_type=row.message_type,
                correlation_id=row.correlation_id))
            return
        backoff = min(self.max_backoff.total_seconds(),
                      self.base_backoff.total_seconds() * 2 ** (attempts - 1))
        retry_at = now + timedelta(seconds=random.uniform(backoff / 2, backoff))
        await self.store.mark_attempt_failed(row.id, reason, retry_at, now)

    async def run_due(self) -> int:
        """Claim and send every row that is due; how many were claimed."""
        total = 0
        while True:
            now = self.clock.now()
            rows = await self.store.claim_due(now, now + self.lease, self.claim_limit)
            if not rows:
                return total
            total += len(rows)
            await self.deliver(rows)
            if len(rows) < self.claim_limit:
                return total

    async def run(self, stop: asyncio.Event, *, poll_interval: float = 1.0) -> None:
        """Poll for due rows until `stop` is set."""
        while not stop.is_set():
            try:
                await self.run_due()
            except Exception:
                log.exception("outbox: dispatch pass failed")
            self._wake.clear()
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(waiters, timeout=poll_interval,
                               return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()


SEND_KIND = SEND
UNROUTED_KIND = UNROUTED
"""The outbox kind of an event nobody subscribes to (kept, never sent)."""
