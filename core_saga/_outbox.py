"""The outbox dispatcher: sends what was committed, marks it sent, retries with backoff."""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from . import _metrics
from ._batching import ArrivalRate, batch_wait
from ._clock import Clock
from ._context import UNROUTED
from ._tracing import end_span, envelope_traceparent, physical_name, send_spans, timer_span
from .persistence import ErrorRecord, OutboxRow, SagaStore
from .transports import Transport, TransportMessage

log = logging.getLogger("core_saga.outbox")


class DeliveryStatus(enum.Enum):
    """What became of one outbox row a sink was given."""

    DELIVERED = "delivered"
    RETRY = "retry"
    """Not delivered for now (throttled, unreachable): tried again after a backoff, for
    as long as it takes."""
    PERMANENT = "permanent"
    """Can never be delivered (too large, malformed, refused): kept in the error store
    with its reason, for an operator to fix and redrive."""
    SETTLED = "settled"
    """Finished without the effect, and that is fine (a task-token answer whose task is
    gone): marked dispatched, the note kept on the row."""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """A sink's verdict on a row it did not simply deliver."""

    status: DeliveryStatus
    reason: str = ""

    @classmethod
    def retry(cls, reason: str) -> DeliveryResult:
        return cls(DeliveryStatus.RETRY, reason)

    @classmethod
    def permanent(cls, reason: str) -> DeliveryResult:
        return cls(DeliveryStatus.PERMANENT, reason)

    @classmethod
    def settled(cls, note: str) -> DeliveryResult:
        return cls(DeliveryStatus.SETTLED, note)


class OutboxSink(Protocol):
    """Delivers outbox rows of one kind (queue sends, EventBridge entries, task answers)."""

    batch_size: int

    async def deliver(self, destination: str, rows: Sequence[OutboxRow]
                      ) -> Mapping[int, DeliveryResult]:
        """Deliver `rows` to `destination`. Return the rows that were not simply
        delivered, by id, with what to do about them; an exception means the whole batch
        is to be retried."""
        ...


class TransportSink:
    """The sink for ``send`` rows: batched sends on the transport."""

    batch_size = 10

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def destination_name(self, destination: str) -> str:
        """The queue's name at the broker (for metrics and spans)."""
        return physical_name(self.transport, destination)

    async def deliver(self, destination: str, rows: Sequence[OutboxRow]
                      ) -> dict[int, DeliveryResult]:
        messages = [TransportMessage(row.body, row.message_id, row.message_type,
                                     row.correlation_id, envelope_traceparent(row.body))
                    for row in rows]
        spans = send_spans(destination, physical_name(self.transport, destination), rows)
        try:
            failures = await self.transport.send_batch(destination, messages)
        except Exception as exc:
            for span in spans:
                end_span(span, f"{type(exc).__name__}: {exc}")
            raise
        failed_ids = {f.message_id: f.reason for f in failures}
        for span, row in zip(spans, rows, strict=False):
            end_span(span, failed_ids.get(row.message_id))
        by_id = {row.message_id: row.id for row in rows}
        return {by_id[f.message_id]: DeliveryResult(
            DeliveryStatus.PERMANENT if f.permanent else DeliveryStatus.RETRY, f.reason)
            for f in failures}


@dataclass(slots=True)
class _MarkBatch:
    """Delivered row ids waiting to be marked dispatched by one statement."""

    ids: list[int] = field(default_factory=list)
    done: bool = False
    error: BaseException | None = None


class _DispatchMarks:
    """Marks delivered rows dispatched, one statement for the rows of every delivery
    that finished while the previous statement ran (a group commit): at load, many
    deliveries share a round trip and a write; alone, a delivery is marked at once. A
    caller returns once its own rows are marked (or with the statement's error)."""

    def __init__(self, store: SagaStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._lock = asyncio.Lock()
        self._open = _MarkBatch()

    async def mark(self, ids: Sequence[int]) -> None:
        batch = self._open
        batch.ids.extend(ids)
        async with self._lock:
            if not batch.done:
                # The first of this batch to get the turn marks it for all of them;
                # rows delivered from now on go to the next batch.
                if self._open is batch:
                    self._open = _MarkBatch()
                try:
                    await self.store.mark_dispatched(batch.ids, self.clock.now())
                except Exception as exc:
                    batch.error = exc
                    raise
                finally:
                    # A cancelled mark leaves the batch to the next of its callers.
                    batch.done = batch.error is not None or not _cancelling()
        if batch.error is not None:
            raise batch.error


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


@dataclass(slots=True)
class _Pending:
    """Committed rows for one destination, waiting to fill a batch."""

    rows: list[OutboxRow] = field(default_factory=list)
    rate: ArrivalRate = field(default_factory=ArrivalRate)
    timer: asyncio.TimerHandle | None = None


class OutboxDispatcher:
    """Sends committed outbox rows through their sinks.

    Rows a process has just committed are delivered by it at once (:meth:`deliver`);
    the rest — timers that came due, rows left by a crashed process after their lease
    ran out, retries — are found by :meth:`run_due`, which :meth:`run` calls in a loop.
    A row that fails for a passing reason is retried with exponential backoff capped at
    `max_backoff`, with no final give-up: an outage of any length ends with the row sent.
    A row that can never be delivered goes to the error store with its reason.
    """

    def __init__(self, store: SagaStore, sinks: Mapping[str, OutboxSink], clock: Clock, *,
                 claim_limit: int = 200, lease: timedelta = timedelta(seconds=60),
                 base_backoff: timedelta = timedelta(seconds=1),
                 max_backoff: timedelta = timedelta(minutes=1)) -> None:
        self.store = store
        self.sinks = dict(sinks)
        self.clock = clock
        self.claim_limit = claim_limit
        self.lease = lease
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self._wake = asyncio.Event()
        self.sent = 0
        self._batches: dict[tuple[str, str], _Pending] = {}
        self._flushing: set[asyncio.Task[None]] = set()
        self._failing: dict[tuple[str, str], int] = {}
        self._passes_failed = 0
        self.on_failure: Callable[[BaseException], None] | None = None
        """Called when a dispatch pass fails (the worker reports an outage with it)."""
        self.linger = 0.01
        """The longest :meth:`deliver_soon` holds a partial batch (seconds)."""
        self._marks = _DispatchMarks(store, clock)

    def add_sink(self, kind: str, sink: OutboxSink) -> None:
        """Register the sink for rows of `kind`."""
        self.sinks[kind] = sink

    def notify(self) -> None:
        """Wake the loop (a timer may be due sooner than the next poll)."""
        self._wake.set()

    def deliver_soon(self, rows: Sequence[OutboxRow]) -> None:
        """Send committed `rows` soon, batched per destination with rows other messages
        commit meanwhile (fewer API calls at load). A destination's partial batch waits
        as long as its arrival rate says it will take to fill, at most `linger` seconds,
        and not at all when fewer than one more row is expected in that time (see
        :func:`batch_wait`). Safe to lose on a crash: the rows are committed and leased,
        and the poller sends them when the lease ends."""
        loop = asyncio.get_running_loop()
        for row in rows:
            key = (row.kind, row.destination)
            batch = self._batches.get(key)
            if batch is None:
                batch = self._batches[key] = _Pending()
            batch.rows.append(row)
            batch.rate.arrived(1)
        for key in {(row.kind, row.destination) for row in rows}:
            batch = self._batches[key]
            capacity = self._capacity(key[0])
            while len(batch.rows) >= capacity:
                self._flush_key(key, capacity)
            if not batch.rows:
                continue
            wait = batch_wait(batch.rate.per_second(), len(batch.rows), capacity, self.linger)
            if wait <= 0:
                self._flush_key(key, capacity)
            elif batch.timer is None:
                batch.timer = loop.call_later(wait, self._flush_key, key, capacity)

    def _capacity(self, kind: str) -> int:
        sink = self.sinks.get(kind)
        return max(1, sink.batch_size) if sink is not None else 10

    def _flush_key(self, key: tuple[str, str], capacity: int) -> None:
        batch = self._batches.get(key)
        if batch is None:
            return
        if batch.timer is not None:
            batch.timer.cancel()
            batch.timer = None
        rows, batch.rows = batch.rows[:capacity], batch.rows[capacity:]
        if rows:
            task = asyncio.create_task(self._deliver_logged(rows))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    def _flush_buffer(self) -> None:
        for key, batch in list(self._batches.items()):
            capacity = self._capacity(key[0])
            while batch.rows:
                self._flush_key(key, capacity)

    async def _deliver_logged(self, rows: list[OutboxRow]) -> None:
        try:
            await self.deliver(rows)
        except Exception as exc:
            # The rows are committed and leased: the poller sends them when it can.
            log.warning("outbox: sending %d committed rows failed (%s: %s); the poller "
                        "will send them", len(rows), type(exc).__name__, exc)
            if self.on_failure is not None:
                self.on_failure(exc)

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
            if kind == UNROUTED:
                done.extend(r.id for r in group)  # published with no subscriber
                continue
            sink = self.sinks.get(kind)
            if sink is None:
                for row in group:
                    await self._failed(row, DeliveryResult.permanent(
                        f"no sink for outbox kind {kind!r} in this process"))
                continue
            for start in range(0, len(group), sink.batch_size):
                chunk = group[start:start + sink.batch_size]
                failed: Mapping[int, DeliveryResult]
                try:
                    failed = await sink.deliver(destination, chunk)
                except Exception as exc:  # the whole batch failed: retry it later
                    self._log_batch_failure(kind, destination, exc)
                    failed = {r.id: DeliveryResult.retry(f"{type(exc).__name__}: {exc}")
                              for r in chunk}
                else:
                    self._log_batch_success(kind, destination)
                for row in chunk:
                    result = failed.get(row.id)
                    if result is None or result.status is DeliveryStatus.DELIVERED:
                        done.append(row.id)
                    elif result.status is DeliveryStatus.SETTLED:
                        # delivered as far as it ever can be: keep the note on the row
                        now_ = self.clock.now()
                        await self.store.mark_attempt_failed(row.id, result.reason, now_,
                                                             now_)
                        done.append(row.id)
                    else:
                        await self._failed(row, result)
        if done:
            await self._marks.mark(done)
            self.sent += len(done)
            sent_now = self.clock.now()
            delivered = set(done)
            for (kind, destination), group in groups.items():
                count = sum(1 for row in group if row.id in delivered)
                if count:
                    name = getattr(self.sinks.get(kind), "destination_name", None)
                    _metrics.sent.add(count, {"messaging.destination.name":
                                              name(destination) if name else destination,
                                              "stepsaga.outbox.kind": kind})
                for row in group:
                    if row.id in delivered and row.created_at is not None \
                            and row.deliver_at > row.created_at:
                        # a timer (or a delayed send): how late after its due time
                        _metrics.timer_lag.record(
                            max(0.0, (sent_now - row.deliver_at).total_seconds()),
                            {"stepsaga.message_type": row.message_type})
                        if kind == "send":  # a queue message (other kinds trace themselves)
                            timer_span(row, envelope_traceparent(row.body), sent_now)

    def _log_batch_failure(self, kind: str, destination: str, exc: BaseException) -> None:
        # One line when a destination starts failing, then every 100th: an outage must
        # not flood the log (each retry of each row would otherwise say the same).
        key = (kind, destination)
        count = self._failing.get(key, 0) + 1
        self._failing[key] = count
        if count == 1 or count % 100 == 0:
            log.warning("outbox: %s to %s failing (%d batches so far), will retry: %s: %s",
                        kind, destination, count, type(exc).__name__, exc)

    def _log_batch_success(self, kind: str, destination: str) -> None:
        count = self._failing.pop((kind, destination), 0)
        if count:
            log.warning("outbox: %s to %s works again after %d failed batches", kind,
                        destination, count)

    async def _failed(self, row: OutboxRow, result: DeliveryResult) -> None:
        _metrics.delivery_failures.add(1, {"stepsaga.outbox.kind": row.kind,
                                           "stepsaga.delivery": result.status.value})
        now = self.clock.now()
        attempts = row.attempts + 1
        if result.status is DeliveryStatus.PERMANENT:
            reason = "permanent: " + result.reason
            log.error("outbox: row %s (%s to %s) cannot be delivered: %s", row.id,
                      row.message_type, row.destination, result.reason)
            await self.store.mark_attempt_failed(row.id, reason, None, now)
            # A sink may hide secrets of its rows (a task token) from the error store.
            redact = getattr(self.sinks.get(row.kind), "redact_body", None)
            body = redact(row.body) if redact is not None else row.body.decode(errors="replace")
            await self.store.add_error(ErrorRecord(
                endpoint=f"outbox:{row.kind}:{row.destination}", error_type="DeliveryFailed",
                reason=result.reason, body=body, at=now,
                message_id=row.message_id, message_type=row.message_type,
                correlation_id=row.correlation_id))
            return
        backoff = min(self.max_backoff.total_seconds(),
                      self.base_backoff.total_seconds() * 2 ** min(attempts - 1, 30))
        retry_at = now + timedelta(seconds=random.uniform(backoff / 2, backoff))
        await self.store.mark_attempt_failed(row.id, result.reason, retry_at, now)

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
            except Exception as exc:
                # One line when the passes start failing (the database is down, say) and
                # one when they work again: not a traceback every poll.
                self._passes_failed += 1
                if self._passes_failed == 1:
                    log.warning("outbox: dispatch passes failing (%s: %s); will keep trying",
                                type(exc).__name__, exc)
                if self.on_failure is not None:
                    self.on_failure(exc)
            else:
                if self._passes_failed:
                    log.warning("outbox: dispatch passes work again after %d failed",
                                self._passes_failed)
                    self._passes_failed = 0
            self._wake.clear()
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(waiters, timeout=poll_interval,
                               return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()


