"""The hot path: one consumed message, one transaction — inbox, instance, history, outbox."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from . import _metrics
from ._activities import run_activities
from ._callables import resolve
from ._clock import Clock
from ._consumer import Consumer
from ._context import BehaviorContext, ConsumeContext, Outgoing, PublishRoutes
from ._envelope import SCHEDULE_TOKEN, Envelope
from ._errors import (
    ConcurrencyError,
    MessageClaimedError,
    SagaNotFoundError,
    UnhandledEventError,
)
from ._events import CompositeEvent, Event, EventKind, MissingInstance
from ._log_context import enter_saga, exit_saga
from ._model import BehaviorModel, Concurrency, SagaModel, Unhandled
from ._retry import RetryAttempts, RetryWait, track_attempts, untrack_attempts
from ._saga import Saga
from ._states import SagaState
from ._tracing import consume_span, handle_span, transition_span
from .persistence import HistoryRecord, InstanceRecord, OutboxRow, SagaStore, StoreTransaction

log = logging.getLogger("core_saga")


@dataclass(slots=True)
class Work:
    """What handling one message produced, before commit."""

    outgoing: list[Outgoing] = field(default_factory=list)
    history: list[HistoryRecord] = field(default_factory=list)
    unscheduled: list[str] = field(default_factory=list)


class Handler(Protocol):
    """Something an endpoint feeds messages to: a saga or a consumer."""

    name: str

    def message_types(self) -> frozenset[str]: ...

    def subscriptions(self) -> frozenset[str]:
        """The published types it wants (timers and responses come by send)."""
        ...

    async def handle(self, tx: StoreTransaction, envelope: Envelope, work: Work,
                     endpoint: str, clock: Clock, routes: PublishRoutes) -> None: ...


class ConsumerHandler:
    """Runs a Consumer for its message type."""

    def __init__(self, consumer: Consumer[Any]) -> None:
        self.consumer = consumer
        self.name = type(consumer).__name__
        self._types = frozenset({consumer.message_type.message_urn})

    def message_types(self) -> frozenset[str]:
        return self._types

    def subscriptions(self) -> frozenset[str]:
        return self._types

    async def handle(self, tx: StoreTransaction, envelope: Envelope, work: Work,
                     endpoint: str, clock: Clock, routes: PublishRoutes) -> None:
        ctx: ConsumeContext[Any] = ConsumeContext(envelope, endpoint=endpoint, clock=clock,
                                                  routes=routes, outgoing=work.outgoing,
                                                  transaction=tx)
        await self.consumer.consume(ctx)


class SagaHandler:
    """Applies events to the instances of one saga."""

    def __init__(self, saga: Saga[Any]) -> None:
        self.saga = saga
        self.model: SagaModel = type(saga).model
        self.name = self.model.name
        self._lock = self.model.concurrency is Concurrency.PESSIMISTIC

    def message_types(self) -> frozenset[str]:
        return self.model.message_types

    def subscriptions(self) -> frozenset[str]:
        return frozenset(e.message_type.message_urn for e in self.model.events.values()
                         if e.kind is EventKind.EVENT)

    async def _correlate(self, tx: StoreTransaction, event: Event[Any],
                         envelope: Envelope) -> str | None:
        message = envelope.message
        if event.by_envelope:
            return envelope.correlation_id
        if event.correlate_by is not None:
            value = await resolve(event.correlate_by(message))
            return None if value is None else str(value)
        if event.query is not None:
            wanted = await resolve(event.query.value(message))
            found = await tx.find(self.name, event.query.name, str(wanted))
            if len(found) > 1:
                raise SagaNotFoundError(self.name, f"query {event.query.name}={wanted!r} "
                                        f"matched {len(found)} instances", event=event.name,
                                        message_id=envelope.message_id)
            return found[0] if found else None
        value = getattr(message, "correlation_id", None)
        return None if value is None else str(value)

    async def prepare(self, envelope: Envelope) -> tuple[Event[Any], str] | None:
        """The event and the instance's correlation id, when both are known without the
        database (no receipt hook, no query correlation): the endpoint then claims the
        message and loads the instance in one statement (:meth:`handle_loaded`)."""
        event = self.model.event_for(envelope.message_type, envelope.message)
        if event is None or event.on_receipt is not None or event.query is not None:
            return None
        if event.by_envelope:
            correlation_id = envelope.correlation_id
        elif event.correlate_by is not None:
            value = await resolve(event.correlate_by(envelope.message))
            correlation_id = None if value is None else str(value)
        else:
            value = getattr(envelope.message, "correlation_id", None)
            correlation_id = None if value is None else str(value)
        return None if correlation_id is None else (event, correlation_id)

    @property
    def locks(self) -> bool:
        """Whether instances are read with a row lock (pessimistic concurrency)."""
        return self._lock

    async def handle(self, tx: StoreTransaction, envelope: Envelope, work: Work,
                     endpoint: str, clock: Clock, routes: PublishRoutes) -> None:
        model = self.model
        event = model.event_for(envelope.message_type, envelope.message)
        if event is None:
            return
        if event.on_receipt is not None:
            receipt: ConsumeContext[Any] = ConsumeContext(
                envelope, endpoint=endpoint, clock=clock, routes=routes,
                outgoing=work.outgoing, transaction=tx)
            if not await event.on_receipt(receipt):
                return
        correlation_id = await self._correlate(tx, event, envelope)
        record = None
        if correlation_id is not None:
            record = await tx.load(model.name, correlation_id, lock=self._lock)
        await self.handle_loaded(tx, event, envelope, work, endpoint, clock, routes,
                                 correlation_id, record)

    async def handle_loaded(self, tx: StoreTransaction, event: Event[Any], envelope: Envelope,
                            work: Work, endpoint: str, clock: Clock, routes: PublishRoutes,
                            correlation_id: str | None, record: InstanceRecord | None
                            ) -> None:
        """Apply `event` to the instance `record` (None: not found under
        `correlation_id`), already loaded in `tx`."""
        model = self.model
        if record is None:
            if event.name not in model.initial_events:
                await self._missing(tx, event, envelope, work, endpoint, clock, routes,
                                    correlation_id)
                return
            if correlation_id is None and event.select_id is not None:
                selected = await resolve(event.select_id(envelope.message))
                correlation_id = None if selected is None else str(selected)
                if correlation_id is not None:
                    record = await tx.load(model.name, correlation_id, lock=self._lock)
            if correlation_id is None:
                correlation_id = envelope.correlation_id or envelope.message_id
        if record is None:
            instance = model.state_type(correlation_id=correlation_id)
        else:
            instance = model.state_type.model_validate(
                {**record.data, "correlation_id": record.correlation_id,
                 "current_state": record.state})
        if not self._accepts(event, instance, envelope, work):
            return
        before = instance.current_state
        behaviors = model.lookup(before, event.name) or ()
        trackers = model.trackers.get((before, event.name), ())
        ctx: BehaviorContext[Any, Any] = BehaviorContext(
            envelope, saga=instance, machine=self.saga, event_name=event.name,
            endpoint=endpoint, clock=clock, routes=routes, outgoing=work.outgoing,
            transaction=tx)
        ran = await self._run(behaviors, ctx)
        work.unscheduled.extend(ctx.unscheduled)
        if ran is None:
            return  # an ignore() applied
        if not ran and not trackers:
            self._unhandled(event, before, envelope, correlation_id,
                            "no behavior for this event in this state" if not behaviors
                            else "no behavior's filter accepts this message in this state")
            return
        steps = [(event.name, before, instance.current_state, len(ctx.transitions))]
        for composite in trackers:
            if self._arrived(composite, event.name, instance):
                mark = len(ctx.transitions)
                state = instance.current_state
                ctx.event_name = composite.name
                ctx.unscheduled.clear()
                composed = await self._run(model.lookup(state, composite.name) or (), ctx)
                work.unscheduled.extend(ctx.unscheduled)
                if composed is False:
                    self._unhandled(composite, state, envelope, correlation_id,
                                    "composite event raised in a state with no behavior "
                                    "for it")
                steps.append((composite.name, state, instance.current_state,
                              len(ctx.transitions) - mark))
        for name, source, target, _ in steps:
            if source != target:
                transition_span(model.name, instance.correlation_id, name, source, target)
        await self._persist(tx, record, instance, clock)
        done = 0
        for name, source, target, count in steps:
            moves = ctx.transitions[done:done + count]
            done += count
            work.history.append(HistoryRecord(
                saga_type=model.name, correlation_id=instance.correlation_id, event=name,
                from_state=source, to_state=target,
                message_id=envelope.message_id, message_type=envelope.message_type,
                at=clock.now(),
                detail={"transitions": [list(t) for t in moves]} if len(moves) > 1 else None,
            ))

    async def _run(self, behaviors: tuple[BehaviorModel, ...],
                   ctx: BehaviorContext[Any, Any]) -> bool | None:
        """Run the behaviors whose filter accepts the message, in order, until an
        ignore() applies. True when one ran, False when none accepted it, None when an
        ignore() applied before any ran."""
        ran = False
        for behavior in behaviors:
            if behavior.filter is not None and not await resolve(behavior.filter(ctx)):
                continue
            if behavior.ignore:
                return ran or None
            ran = True
            await run_activities(behavior.activities, ctx)
        return ran

    def _arrived(self, composite: CompositeEvent, event: str, instance: SagaState) -> bool:
        """Count `event` towards `composite`; True when the composite is to be raised."""
        arrived: list[str] = list(getattr(instance, composite.status_field) or ())
        if event in arrived and composite.raise_once:
            return False
        if event not in arrived:
            arrived.append(event)
            setattr(instance, composite.status_field, arrived)
        return set(self.model.composites[composite.name]) <= set(arrived)

    def _unhandled(self, event: Event[Any], state: str, envelope: Envelope,
                   correlation_id: str | None, problem: str) -> None:
        model = self.model
        if event.kind is EventKind.SCHEDULE or model.unhandled_policy(state) is Unhandled.IGNORE:
            log.info("saga %s %s: %s ignored in state %s (%s)", model.name, correlation_id,
                     event.name, state, problem)
            return
        raise UnhandledEventError(model.name, problem, state=state, event=event.name,
                                  message_id=envelope.message_id,
                                  correlation_id=correlation_id)

    def _accepts(self, event: Event[Any], instance: SagaState, envelope: Envelope,
                 work: Work) -> bool:
        """Recognise stale timers and responses, and consume the fresh ones."""
        owner: Any = event.owner_object
        if event.kind is EventKind.SCHEDULE:
            token = envelope.headers.get(SCHEDULE_TOKEN)
            if not token or getattr(instance, owner.token_field) != token:
                log.info("saga %s %s: stale timer %s ignored", self.name,
                         instance.correlation_id, event.name)
                return False
            setattr(instance, owner.token_field, None)
        elif event.kind in (EventKind.REQUEST_COMPLETED, EventKind.REQUEST_FAULTED,
                            EventKind.REQUEST_TIMEOUT):
            pending = getattr(instance, owner.request_id_field)
            if not pending or pending != envelope.request_id:
                log.info("saga %s %s: stale %s ignored", self.name,
                         instance.correlation_id, event.name)
                return False
            setattr(instance, owner.request_id_field, None)
            if event.kind is not EventKind.REQUEST_TIMEOUT:
                work.unscheduled.append(pending)  # the timeout timer carries the request id
        return True

    async def _persist(self, tx: StoreTransaction, record: InstanceRecord | None,
                       instance: SagaState, clock: Clock) -> None:
        model = self.model
        now = clock.now()
        if await model.is_completed(instance):
            if record is not None:
                await tx.delete(model.name, instance.correlation_id, record.version)
            return
        new = InstanceRecord(
            saga_type=model.name, correlation_id=instance.correlation_id,
            state=instance.current_state, version=1 if record is None else record.version + 1,
            data=instance.data(), created_at=now if record is None else record.created_at,
            updated_at=now,
        )
        await tx.save(new, None if record is None else record.version)
        if model.indexed:
            await tx.set_index(model.name, instance.correlation_id,
                               {k: str(getattr(instance, k)) for k in model.indexed
                                if getattr(instance, k) is not None})

    async def _missing(self, tx: StoreTransaction, event: Event[Any], envelope: Envelope,
                       work: Work,
                       endpoint: str, clock: Clock, routes: PublishRoutes,
                       correlation_id: str | None) -> None:
        policy = event.on_missing if event.on_missing is not None else self.model.missing_instance
        if event.kind is not EventKind.EVENT:
            log.info("saga %s: %s for missing instance %s ignored", self.name, event.name,
                     correlation_id)
            return
        if policy is MissingInstance.DISCARD:
            log.info("saga %s: %s for missing instance %s discarded", self.name, event.name,
                     correlation_id)
            return
        if policy is MissingInstance.FAULT:
            raise SagaNotFoundError(self.name, "no instance for this event, and the event "
                                    "does not start one", event=event.name,
                                    message_id=envelope.message_id,
                                    correlation_id=correlation_id)
        ctx: ConsumeContext[Any] = ConsumeContext(envelope, endpoint=endpoint, clock=clock,
                                                  routes=routes, outgoing=work.outgoing,
                                                  transaction=tx)
        await policy(ctx)


@dataclass(slots=True)
class Processed:
    """The outcome of one message: `duplicate` when the inbox had it already."""

    duplicate: bool
    rows: list[OutboxRow]
    work: Work


class Endpoint:
    """A receive endpoint (one queue) and the handlers behind it.

    :meth:`process` handles one message in one transaction: it claims the message id
    in the inbox, runs every handler for the type, writes instances, history and the
    outbox, and commits. On an optimistic-concurrency conflict it rolls back and runs
    the message again from a fresh read.
    """

    def __init__(self, name: str, handlers: Sequence[Handler], *, store: SagaStore,
                 clock: Clock, routes: PublishRoutes, max_conflict_retries: int = 25,
                 lease: timedelta = timedelta(seconds=60),
                 on_committed: Callable[[Envelope, Work], None] | None = None) -> None:
        self.name = name
        self.on_committed = on_committed
        self.handlers = list(handlers)
        self.store = store
        self.clock = clock
        self.routes = routes
        self.max_conflict_retries = max_conflict_retries
        self.lease = lease
        self.batch_lock_wait = 0.05
        """Seconds a batched commit waits for a row lock before it falls back to one
        transaction per message."""
        self._by_type: dict[str, list[Handler]] = {}
        for handler in self.handlers:
            for urn in handler.message_types():
                self._by_type.setdefault(urn, []).append(handler)

    def message_types(self) -> frozenset[str]:
        """Every message type some handler here consumes."""
        return frozenset(self._by_type)

    def subscriptions(self) -> frozenset[str]:
        """Every published type some handler here wants."""
        return frozenset(urn for h in self.handlers for urn in h.subscriptions())

    def handles(self, urn: str) -> bool:
        return urn in self._by_type

    async def process(self, envelope: Envelope) -> Processed:
        """Handle `envelope` exactly once in effect. Exceptions from handlers propagate
        (after rollback) for the caller's retry and dead-letter policy.

        A ``retry`` block that must wait (:class:`RetryWait`) gets the transaction rolled
        back first: the wait holds no transaction and no lock, then the message runs
        again from a fresh read, the block resuming at its next attempt."""
        attempts = RetryAttempts()
        token = track_attempts(attempts)
        try:
            conflicts = 0
            while True:
                attempts.begin_run()
                try:
                    return await self._process_once(envelope)
                except ConcurrencyError:
                    _metrics.conflicts.add(1, {"messaging.destination.name": self.name})
                    if conflicts == self.max_conflict_retries:
                        raise
                    await asyncio.sleep(random.uniform(0, min(0.05, 0.002 * 2**conflicts)))
                    conflicts += 1
                except RetryWait as wait:
                    _metrics.retries.add(1, {"messaging.destination.name": self.name,
                                             "stepsaga.message_type": envelope.message_type})
                    log.info("%s: message %s waits %.3gs before its next retry (%s)",
                             self.name, envelope.message_id, wait.delay, wait.cause)
                    await self.clock.sleep(wait.delay)
        finally:
            untrack_attempts(token)

    async def process_batch(self, envelopes: Sequence[Envelope], *,
                            each: Callable[[Envelope], AbstractContextManager[None]]
                            | None = None) -> list[Processed]:
        """Handle `envelopes` in order in ONE transaction: one commit for all of them.

        All or nothing: any exception — a handler's failure, a version conflict, a
        ``retry`` block that must wait, an outage — rolls the whole batch back and
        propagates, and the caller handles the messages one by one with
        :meth:`process`, so that a failing message never takes its neighbours' effects
        with it. Each message keeps its own inbox entry and outbox rows; a message
        whose id came earlier in the batch (or before) is a duplicate, as in
        :meth:`process`. `each` wraps the handling of each message (its spans and log
        context; by default its consume span)."""
        works = [Work() for _ in envelopes]
        rows: list[list[OutboxRow] | None] = []
        async with self.store.transaction() as tx:
            # A batch holds its rows' locks until its commit: rather than queue behind
            # another batch (or deadlock with it, found only after PostgreSQL's
            # deadlock_timeout), it gives up soon and its messages go one by one.
            await tx.limit_lock_wait(self.batch_lock_wait)
            prepared = [await self._prepare(envelope) for envelope in envelopes]
            # Claim every message and read every instance they name in one go; the
            # messages then run without a round trip each and write together.
            known = [p for p in prepared if p is not None]
            await tx.prefetch(self.name, [e.message_id for e in envelopes],
                              self.clock.now(),
                              list(dict.fromkeys((h.name, cid) for h, _, cid in known)),
                              lock=any(h.locks for h, _, _ in known))
            for envelope, work, ready in zip(envelopes, works, prepared, strict=True):
                attempts = RetryAttempts()
                attempts.begin_run()
                token = track_attempts(attempts)
                try:
                    with (consume_span(self.name, envelope) if each is None
                          else each(envelope)):
                        rows.append(await self._run(tx, envelope, work, ready, asked=True))
                finally:
                    untrack_attempts(token)
        processed = []
        for envelope, work, written in zip(envelopes, works, rows, strict=True):
            if written is not None and self.on_committed is not None:
                self.on_committed(envelope, work)
            processed.append(Processed(written is None, written or [], work))
        return processed

    async def _process_once(self, envelope: Envelope) -> Processed:
        work = Work()
        try:
            async with self.store.message_transaction() as tx:
                rows = await self._run(tx, envelope, work)
        except MessageClaimedError:
            # Another delivery of it claimed it between our read and our write.
            return Processed(True, [], Work())
        if rows is None:
            return Processed(True, [], work)
        if self.on_committed is not None:
            self.on_committed(envelope, work)
        return Processed(False, rows, work)

    async def _prepare(self, envelope: Envelope
                       ) -> tuple[SagaHandler, Event[Any], str] | None:
        """For a message one saga handles and whose instance the message names: the
        saga's handler, the event and the correlation id; else None."""
        handlers = self._by_type.get(envelope.message_type, ())
        single = handlers[0] if len(handlers) == 1 else None
        if not isinstance(single, SagaHandler):
            return None
        prepared = await single.prepare(envelope)
        return None if prepared is None else (single, *prepared)

    async def _run(self, tx: StoreTransaction, envelope: Envelope, work: Work,
                   ready: tuple[SagaHandler, Event[Any], str] | None = None,
                   asked: bool = False) -> list[OutboxRow] | None:
        """Handle `envelope` inside `tx`: claim it in the inbox, run its handlers, write
        instances, history and outbox. The outbox rows, or None for a duplicate.
        `ready` is what :meth:`_prepare` said of it when `asked` already."""
        handlers = self._by_type.get(envelope.message_type, ())
        now = self.clock.now()
        prepared = ready if asked else await self._prepare(envelope)
        if prepared is not None:
            # One saga, its instance known from the message: claim and load together.
            single, event, correlation_id = prepared
            claimed, record = await tx.claim_and_load(
                self.name, envelope.message_id, now, single.name, correlation_id,
                lock=single.locks)
            if not claimed:
                return None
            entered = enter_saga(single.name)
            try:
                with handle_span(single.name, envelope):
                    await single.handle_loaded(tx, event, envelope, work, self.name,
                                               self.clock, self.routes, correlation_id, record)
            finally:
                exit_saga(entered)
        else:
            if not await tx.inbox_claim(self.name, envelope.message_id, now):
                return None
            for handler in handlers:
                saga = enter_saga(handler.name) if isinstance(handler, SagaHandler) else None
                try:
                    with handle_span(handler.name, envelope):
                        await handler.handle(tx, envelope, work, self.name, self.clock,
                                             self.routes)
                finally:
                    if saga is not None:
                        exit_saga(saga)
        if work.unscheduled:
            await tx.cancel_timers(work.unscheduled)
        await tx.add_history(work.history)
        return await tx.add_outbox(work.outgoing, now, now + self.lease)
