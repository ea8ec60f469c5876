"""From a received message to an outcome: decode, process, dispatch, or dead-letter."""

from __future__ import annotations

import contextlib
import enum
import logging
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from . import _metrics
from ._clock import Clock
from ._context import SEND, ConsumeContext
from ._engine import Endpoint
from ._envelope import Envelope, decode_envelope, new_id
from ._errors import MessageError, OversizeMessageError
from ._failures import FailureKind, classify_failure
from ._log_context import enter_message, exit_message
from ._messages import ExceptionInfo, Fault, MessageRegistry, registry
from ._outbox import OutboxDispatcher
from ._tracing import consume_span, process_context, receive_span
from .persistence import ErrorRecord, OutboxRow

if TYPE_CHECKING:
    from ._store_health import StoreHealth
from .transports import ReceivedMessage

log = logging.getLogger("core_saga.receive")


class ReceiveOutcome(enum.Enum):
    """What became of a received message."""

    ACK = "ack"
    """Handled (or a duplicate): delete it."""
    RETRY = "retry"
    """Failed; it was released to come back after a backoff."""
    DEAD = "dead"
    """Kept in the error store and moved to the dead-letter queue."""
    CONFLICT = "conflict"
    """Contention (a lock not granted in time, a deadlock): not the message's fault; run
    it again shortly. Its delivery is not counted."""
    OUTAGE = "outage"
    """The database (or AWS) is unavailable: not the message's fault; keep it until the
    outage is over. Its delivery is not counted."""


@dataclass(frozen=True, slots=True)
class RedeliveryPolicy:
    """How a failing message comes back before it is dead-lettered."""

    max_deliveries: int = 5
    """Deliveries before the message is dead-lettered (the first one included): its
    handler's failures, counted in the store — a receive that ended in a crash, an
    outage or contention is not one."""
    base_delay: timedelta = timedelta(seconds=1)
    """Visibility delay after the first failure; it doubles each time."""
    max_delay: timedelta = timedelta(minutes=5)

    def delay(self, failures: int) -> int:
        """Seconds before the message comes back after its `failures`-th failure."""
        seconds = self.base_delay.total_seconds() * 2 ** max(0, failures - 1)
        return int(min(seconds, self.max_delay.total_seconds()))


class ReceivePipeline:
    """Handles received messages for one endpoint; the worker and the harness share it."""

    def __init__(self, endpoint: Endpoint, dispatcher: OutboxDispatcher, clock: Clock, *,
                 redelivery: RedeliveryPolicy | None = None,
                 types: MessageRegistry = registry, batch_sends: bool = False,
                 max_message_bytes: int | None = None,
                 health: StoreHealth | None = None) -> None:
        self.endpoint = endpoint
        self.health = health
        """Tells an outage from a handler's failure (None: every failure is the
        message's, as in the test harness)."""
        self.max_message_bytes = max_message_bytes
        """Bodies over this many bytes go to the error store undecoded (None: no limit)."""
        self.batch_sends = batch_sends
        self.dispatcher = dispatcher
        self.clock = clock
        self.redelivery = redelivery or RedeliveryPolicy()
        self.types = types
        self.store = endpoint.store
        self.physical_name = endpoint.name
        """The queue's name at the broker (the worker sets it: the SQS prefix added)."""
        self.receive_limit: int | None = None
        """The receives after which the broker moves a message to its dead-letter queue
        itself, without a reason (SQS ``maxReceiveCount``; the worker sets it). A
        message that fails on its last receive is dead-lettered here, with its reason,
        however few of its deliveries its failures have spent. None: no such limit."""

    async def handle(self, received: ReceivedMessage) -> tuple[ReceiveOutcome, str | None]:
        """Process one message; the outcome and, when not ACK, the reason."""
        started = time.perf_counter()
        seen: list[str] = []
        outcome, reason = await self._handle(received, seen)
        attributes = _metrics.endpoint_attributes(self.physical_name,
                                                  seen[0] if seen else None)
        _metrics.process_duration.record(time.perf_counter() - started, attributes)
        _metrics.handled.add(1, {**attributes, "stepsaga.outcome": outcome.value})
        if outcome is ReceiveOutcome.DEAD:
            _metrics.dead_lettered.add(1, attributes)
        return outcome, reason

    async def handle_batch(self, received: Sequence[ReceivedMessage]
                           ) -> list[tuple[ReceiveOutcome, str | None] | None]:
        """Process `received` in one database transaction (:meth:`Endpoint.process_batch`):
        for each message its outcome, or None for a message to be handled on its own
        with :meth:`handle` — one that does not decode or has no consumer here (its
        dead-letter path is :meth:`handle`'s), or every message when the batch failed
        as a whole (a handler's failure, a conflict, an outage: all of it was rolled
        back, and each message then gets its own outcome)."""
        started = time.perf_counter()
        results: list[tuple[ReceiveOutcome, str | None] | None] = [None] * len(received)
        envelopes: list[Envelope] = []
        positions: list[int] = []
        for position, message in enumerate(received):
            if self.max_message_bytes is not None and len(message.body) > self.max_message_bytes:
                continue
            try:
                envelope = decode_envelope(message.body, types=self.types)
            except MessageError:
                continue
            if self.endpoint.handles(envelope.message_type):
                envelopes.append(envelope)
                positions.append(position)
        if not envelopes:
            return results
        by_envelope = {id(envelope): received[position]
                       for position, envelope in zip(positions, envelopes, strict=True)}

        @contextlib.contextmanager
        def each(envelope: Envelope) -> Iterator[None]:
            # What handle() sets around one message: log context, spans, trace context.
            message = by_envelope[id(envelope)]
            token = enter_message(self.endpoint.name, envelope)
            try:
                if message.received_ns is not None:
                    receive_span(self.endpoint.name, self.physical_name, envelope,
                                 started_ns=message.received_ns[0],
                                 ended_ns=message.received_ns[1], batch=message.batch_size)
                with consume_span(self.endpoint.name, envelope, self.physical_name):
                    message.trace_context = process_context()
                    yield
            finally:
                exit_message(token)

        try:
            processed = await self.endpoint.process_batch(envelopes, each=each)
        except Exception as exc:
            # Rolled back as a whole: the caller handles each message on its own.
            _metrics.batch_fallbacks.add(1, _metrics.endpoint_attributes(self.physical_name))
            log.debug("%s: batch of %d rolled back (%s: %s); handling its messages one by "
                      "one", self.endpoint.name, len(envelopes), type(exc).__name__, exc)
            return results
        _metrics.batch_size.record(len(envelopes),
                                   _metrics.endpoint_attributes(self.physical_name))
        rows = [row for p in processed for row in p.rows]
        await self._dispatch(rows)
        elapsed = time.perf_counter() - started
        for position, envelope in zip(positions, envelopes, strict=True):
            results[position] = (ReceiveOutcome.ACK, None)
            attributes = _metrics.endpoint_attributes(self.physical_name,
                                                      envelope.message_type)
            _metrics.process_duration.record(elapsed, attributes)
            _metrics.handled.add(1, {**attributes,
                                     "stepsaga.outcome": ReceiveOutcome.ACK.value})
        return results

    async def _dispatch(self, rows: list[OutboxRow]) -> None:
        """Send what a commit wrote: batched with other commits' rows, or at once."""
        if rows and self.batch_sends:
            self.dispatcher.deliver_soon(rows)
        elif rows:
            try:
                await self.dispatcher.deliver(rows)
            except Exception:
                # Committed rows are safe: the poller sends them once their lease ends.
                log.exception("%s: immediate dispatch failed", self.endpoint.name)

    async def _handle(self, received: ReceivedMessage, seen: list[str]
                      ) -> tuple[ReceiveOutcome, str | None]:
        try:
            size = len(received.body)
            if self.max_message_bytes is not None and size > self.max_message_bytes:
                # Checked before decoding: a huge body costs no parse, and could never be
                # sent on by this endpoint anyway.
                raise OversizeMessageError(f"the body is {size} bytes, over the endpoint's "
                                           f"limit of {self.max_message_bytes} bytes")
            envelope = decode_envelope(received.body, types=self.types)
            seen.append(envelope.message_type)
        except MessageError as exc:
            return await self._dead(received.body, exc, None, exc.reason)
        token = enter_message(self.endpoint.name, envelope)
        try:
            return await self._process(received, envelope)
        finally:
            exit_message(token)

    async def _process(self, received: ReceivedMessage, envelope: Envelope
                       ) -> tuple[ReceiveOutcome, str | None]:
        if received.received_ns is not None:
            receive_span(self.endpoint.name, self.physical_name, envelope,
                         started_ns=received.received_ns[0], ended_ns=received.received_ns[1],
                         batch=received.batch_size)
        if not self.endpoint.handles(envelope.message_type):
            reason = (f"skipped: endpoint {self.endpoint.name!r} has no consumer for "
                      f"{envelope.message_type}")
            return await self._dead(received.body, LookupError(reason), envelope, reason)
        try:
            with consume_span(self.endpoint.name, envelope, self.physical_name):
                received.trace_context = process_context()
                processed = await self.endpoint.process(envelope)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            held = await self._not_the_messages_fault(exc)
            if held is not None:
                return held, reason
            try:
                received.failures = await self._count_failure(envelope, reason)
            except Exception as failure:
                held = await self._not_the_messages_fault(failure)
                if held is None:
                    raise
                log.warning("%s: cannot count the failure of %s now (%s: %s); keeping the "
                            "message", self.endpoint.name, envelope.message_id,
                            type(failure).__name__, failure)
                return held, reason
            last_receive = (self.receive_limit is not None
                            and received.receive_count >= self.receive_limit)
            if received.failures < self.redelivery.max_deliveries and not last_receive:
                log.warning("%s: message %s failed (failure %d of %d), will retry: %s",
                            self.endpoint.name, envelope.message_id, received.failures,
                            self.redelivery.max_deliveries, reason)
                return ReceiveOutcome.RETRY, reason
            log.error("%s: message %s failed %d times (receive %d), dead-lettered: %s",
                      self.endpoint.name, envelope.message_id, received.failures,
                      received.receive_count, reason)
            return await self._dead(received.body, exc, envelope, reason)
        await self._dispatch(processed.rows)
        return ReceiveOutcome.ACK, None

    async def _count_failure(self, envelope: Envelope, reason: str) -> int:
        """Count the handler's failure of `envelope` in the store; how many so far.
        Counted in the store, not read off the broker's receive count: a worker killed
        while holding the message spends a receive, not one of its deliveries."""
        if self.redelivery.max_deliveries <= 1:
            return 1  # its first failure is its last: nothing to keep
        return await self.store.count_failure(self.endpoint.name, envelope.message_id,
                                              reason, self.clock.now())

    async def _not_the_messages_fault(self, exc: BaseException) -> ReceiveOutcome | None:
        """OUTAGE or CONFLICT when `exc` is not the message's own failure, else None."""
        if self.health is None:
            return None
        if await self.health.is_outage(exc):
            return ReceiveOutcome.OUTAGE
        if classify_failure(exc) is FailureKind.CONFLICT:
            return ReceiveOutcome.CONFLICT
        return None

    async def _dead(self, body: bytes, exc: BaseException, envelope: Envelope | None,
                    reason: str) -> tuple[ReceiveOutcome, str | None]:
        """Keep the message in the error store (and send a request's Fault); DEAD. The
        error store needs the database: while it is down the message is kept (OUTAGE)
        rather than left to SQS's own redrive, which would lose the reason."""
        try:
            await self._record(body, exc, envelope)
        except Exception as failure:
            held = await self._not_the_messages_fault(failure)
            if held is None:
                raise
            log.warning("%s: cannot record a dead letter now (%s: %s); keeping the message",
                        self.endpoint.name, type(failure).__name__, failure)
            return held, reason
        return ReceiveOutcome.DEAD, reason

    async def _record(self, body: bytes, exc: BaseException, envelope: Envelope | None) -> None:
        """Keep the message in the error store and, for a request, send its Fault."""
        now = self.clock.now()
        reason = exc.reason if isinstance(exc, MessageError) else f"{type(exc).__name__}: {exc}"
        record = ErrorRecord(
            endpoint=self.endpoint.name, error_type=type(exc).__name__, reason=reason,
            body=body.decode(errors="replace"), at=now,
            message_id=envelope.message_id if envelope else getattr(exc, "message_id", None),
            message_type=envelope.message_type if envelope else None,
            correlation_id=envelope.correlation_id if envelope else None,
            headers=dict(envelope.headers) if envelope else {},
        )
        async with self.store.transaction() as tx:
            await tx.add_error(record)
            if envelope is not None:
                await tx.forget_failures(self.endpoint.name, envelope.message_id)
            rows = []
            if envelope is not None and envelope.fault_address:
                ctx: ConsumeContext[Fault] = ConsumeContext(
                    envelope, endpoint=self.endpoint.name, clock=self.clock,
                    routes=lambda _urn: ())
                fault = Fault(
                    fault_id=new_id(), faulted_message_id=envelope.message_id,
                    faulted_message_type=envelope.message_type,
                    exceptions=[ExceptionInfo(
                        exception_type=type(exc).__name__,
                        message="".join(traceback.format_exception_only(exc)).strip())],
                    message=envelope.message.to_wire(),
                )
                out = ctx.make_envelope(fault, correlation_id=envelope.correlation_id)
                out.request_id = envelope.request_id
                ctx.add(SEND, envelope.fault_address, out)
                rows = await tx.add_outbox(ctx.outgoing, now, now + self.endpoint.lease)
        if rows:
            await self.dispatcher.deliver(rows)
