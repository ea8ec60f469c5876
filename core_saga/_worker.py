"""The worker process: hosts sagas and consumers on queues, with bounded concurrency,
batched deletes, visibility extension, the outbox loop, health, and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from . import _metrics
from ._batching import ArrivalRate, batch_wait
from ._clock import Clock, DatabaseClock, SystemClock
from ._consumer import Consumer
from ._context import SEND
from ._engine import ConsumerHandler, Endpoint, Handler, SagaHandler
from ._errors import ReceiptExpiredError, StepsagaError
from ._event_loop import loop_name
from ._failures import FailureKind, classify_failure, looks_like_network_failure
from ._health import HealthServer
from ._outbox import OutboxDispatcher, OutboxSink, TransportSink
from ._outbox_transaction import Outbox
from ._receive import ReceiveOutcome, ReceivePipeline, RedeliveryPolicy
from ._saga import Saga
from ._settings import WorkerSettings
from ._store_health import StoreHealth
from ._topology import Topology
from ._tracing import end_span, physical_name, settle_spans
from .persistence import SagaStore
from .transports import ReceivedMessage, Transport

log = logging.getLogger("core_saga.worker")

T = TypeVar("T")


class _Deleter:
    """Collects handled messages and deletes them in batches of up to 10. A partial
    batch waits up to `linger` seconds for more, and not at all when the queue's rate
    of handled messages says fewer than one more will come in that time
    (:func:`batch_wait`)."""

    def __init__(self, transport: Transport, queue: str, *, linger: float = 0.02) -> None:
        self.transport = transport
        self.queue = queue
        self.linger = linger
        self._pending: list[ReceivedMessage] = []
        self._rate = ArrivalRate()
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()

    def add(self, message: ReceivedMessage) -> None:
        self.add_all((message,))

    def add_all(self, messages: Sequence[ReceivedMessage]) -> None:
        """Delete `messages` (handled and committed) soon."""
        if not messages:
            return
        self._pending.extend(messages)
        self._rate.arrived(len(messages))
        while len(self._pending) >= 10:
            self._flush()
        if not self._pending:
            return
        # Deleting late costs nothing (the messages stay invisible, the inbox absorbs a
        # redelivery): a partial batch waits the whole window for the next burst, unless
        # the queue is too quiet for one to come in it.
        quiet = batch_wait(self._rate.per_second(), len(self._pending), 10, self.linger) <= 0
        wait = 0.0 if quiet else self.linger
        if wait <= 0:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(wait, self._flush)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending[:10], self._pending[10:]
        if batch:
            task = asyncio.create_task(self._delete(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _delete(self, batch: list[ReceivedMessage]) -> None:
        spans = settle_spans(self.queue, physical_name(self.transport, self.queue), batch)
        error = None
        try:
            await self.transport.delete_batch(self.queue, batch)
        except Exception as exc:
            # Not deleted: they come back after the visibility timeout and the inbox
            # absorbs them as duplicates.
            error = f"{type(exc).__name__}: {exc}"
            log.exception("%s: batched delete failed", self.queue)
        finally:
            for span in spans:
                end_span(span, error)

    async def drain(self) -> None:
        """Delete everything collected so far."""
        while self._pending:
            self._flush()
        if self._running:
            await asyncio.gather(*self._running)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less when `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


class WorkerConfigurationError(StepsagaError):
    """The worker's settings and its queues or its database disagree; it refuses to
    run."""


class Worker:
    """Hosts sagas and consumers on their queues.

    Build one, add what it hosts, and run it::

        worker = Worker(settings, store=store, transport=transport)
        worker.add_saga(OrderSaga(), queue="order-saga")
        worker.add_consumer(ChargeConsumer(), queue="payment")
        await worker.run()        # until SIGTERM/SIGINT or request_stop()

    Several worker processes may share the queues and the database: the inbox makes
    each message take effect once, and outbox leases keep rows from being sent twice.
    """

    def __init__(self, settings: WorkerSettings, *, store: SagaStore, transport: Transport,
                 clock: Clock | None = None, topology: Topology | None = None) -> None:
        self.settings = settings
        self.store = store
        self.transport = transport
        self._database_clock: DatabaseClock | None = None
        if clock is None and settings.database_clock:
            self._database_clock = DatabaseClock(store)
        self.clock: Clock = clock or self._database_clock or SystemClock()
        self.topology = topology or Topology()
        self.dispatcher = OutboxDispatcher(store, {SEND: TransportSink(transport)}, self.clock)
        self.dispatcher.linger = settings.send_linger_seconds
        self.redelivery = RedeliveryPolicy(
            max_deliveries=settings.max_deliveries,
            base_delay=timedelta(seconds=settings.redelivery_base_seconds))
        self.store_health = StoreHealth(store, f"worker:{socket.gethostname()}:{os.getpid()}",
                                        max_backoff=settings.outage_backoff_max_seconds)
        """Whether the database takes writes; receiving pauses while it does not."""
        self.dispatcher.on_failure = self._outbox_failed
        self._handlers: dict[str, list[Handler]] = {}
        self._pipelines: dict[str, ReceivePipeline] = {}
        self._limits: dict[str, int] = {}
        self._stop = asyncio.Event()
        self._started = asyncio.Event()
        self._in_flight = 0
        self._in_flight_at: dict[str, int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._receiving: dict[str, bool] = {}
        self._on_stop: list[Callable[[], Awaitable[Any]]] = []
        self.health: HealthServer | None = None
        self.handled = 0
        self.failed = 0
        self.held = 0
        """Messages kept through an outage or contention (not counted as failures)."""

    @classmethod
    async def from_settings(cls, settings: WorkerSettings | None = None, *,
                            topology: Topology | None = None) -> Worker:
        """A worker on the store and the SQS transport `settings` describe (the
        ``STEPSAGA_*`` environment by default), which closes both when it stops: what a
        ``stepsaga worker MODULE:build`` factory usually starts with."""
        from .transports import SqsTransport

        settings = settings or WorkerSettings()
        store = settings.store()
        try:
            transport = await SqsTransport.connect(settings.sqs())
        except BaseException:
            await store.close()
            raise
        worker = cls(settings, store=store, transport=transport, topology=topology)
        worker.on_stop(transport.close)
        worker.on_stop(store.close)
        return worker

    def on_stop(self, callback: Callable[[], Awaitable[Any]]) -> Worker:
        """Await `callback` when the worker has stopped (after in-flight messages and the
        outbox), in the order registered: close what the factory opened for it."""
        self._on_stop.append(callback)
        return self

    # -- what it hosts ----------------------------------------------------------------
    def add_saga(self, saga: Saga[Any], queue: str, *,
                 concurrency: int | None = None) -> Worker:
        """Host `saga` on `queue`; its events are subscribed there. `concurrency` caps
        the messages of this queue handled at once (default: the settings'
        ``endpoint_concurrency``)."""
        return self._add(queue, SagaHandler(saga), concurrency)

    def add_consumer(self, consumer: Consumer[Any], queue: str, *,
                     concurrency: int | None = None) -> Worker:
        """Host `consumer` on `queue` (`concurrency` as for :meth:`add_saga`)."""
        return self._add(queue, ConsumerHandler(consumer), concurrency)

    def outbox(self) -> Outbox:
        """An :class:`~core_saga.Outbox` on this worker's store, topology and dispatcher:
        for code in the same process (an HTTP endpoint) that writes rows and sends or
        publishes messages in one transaction."""
        return Outbox(self.store, topology=self.topology, dispatcher=self.dispatcher,
                      clock=self.clock)

    def add_sink(self, kind: str, sink: OutboxSink) -> Worker:
        """Deliver outbox rows of `kind` (e.g. EventBridge entries) through `sink`."""
        self.dispatcher.add_sink(kind, sink)
        return self

    def _add(self, queue: str, handler: Handler, concurrency: int | None) -> Worker:
        if concurrency is not None:
            if concurrency < 1:
                raise ValueError(f"concurrency of queue {queue!r} must be at least 1, "
                                 f"not {concurrency}")
            self._limits[queue] = concurrency
        self._handlers.setdefault(queue, []).append(handler)
        endpoint = Endpoint(queue, self._handlers[queue], store=self.store, clock=self.clock,
                            routes=self.topology.routes,
                            lease=timedelta(seconds=self.settings.visibility_timeout * 2))
        self._pipelines[queue] = ReceivePipeline(endpoint, self.dispatcher, self.clock,
                                                 redelivery=self.redelivery, batch_sends=True,
                                                 max_message_bytes=self.settings.max_message_bytes,
                                                 health=self.store_health)
        self._pipelines[queue].physical_name = physical_name(self.transport, queue)
        self.topology.subscribe_all(handler.subscriptions(), queue)
        return self

    @property
    def queues(self) -> Sequence[str]:
        return list(self._pipelines)

    # -- running -------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop receiving; in-flight messages finish, then the outbox is flushed."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def _ready_checks(self) -> dict[str, bool]:
        checks = {"started": self._started.is_set() and not self._stop.is_set()}
        checks["database"] = self.store_health.up and await self.store_health.check()
        # A queue whose last receive failed (AWS unreachable, a closed client) is not
        # ready; it is again after its next receive goes through.
        checks["transport"] = all(self._receiving.values()) if self._receiving else False
        return checks

    def _endpoint_limit(self, queue: str) -> int:
        limit = self._limits.get(queue) or self.settings.endpoint_concurrency
        if limit is None:
            limit = max(1, self.settings.concurrency // 2) if len(self._pipelines) > 1 \
                else self.settings.concurrency
        return min(limit, self.settings.concurrency)

    async def _check_tables(self) -> None:
        """Refuse to run on a database that lacks one of the engine's tables (a
        migration not applied): a message would fail only once it needs the table — a
        failing message, for one, when its failure is counted."""
        missing = await self._with_outage_retry(self.store.missing_tables,
                                                "checking the engine's tables")
        if missing:
            raise WorkerConfigurationError(
                f"the database lacks the engine's table(s) {', '.join(missing)}: apply the "
                f"packaged migrations (stepsaga migrate --database-url …) or create them "
                f"(store.create_schema())")

    async def _check_redrive(self) -> None:
        """Refuse to run when SQS would dead-letter before the worker does: the worker's
        own path keeps the reason (error store) and needs ``max_deliveries`` receives,
        plus a margin for crashes and lost receipts. Tells each queue's pipeline its
        last receive (:attr:`ReceivePipeline.receive_limit`)."""
        wanted = self.settings.max_deliveries + self.settings.dead_letter_margin
        for pipeline in self._pipelines.values():
            pipeline.receive_limit = wanted  # unless the queue says otherwise, below
        problems = []
        probe: Callable[[str], Awaitable[int | None]] | None = getattr(
            self.transport, "redrive_limit", None)
        if probe is None:
            return
        for queue, pipeline in self._pipelines.items():
            count = await self._with_outage_retry(functools.partial(probe, queue),
                                                  f"reading the redrive policy of {queue}")
            if count is not None:
                # A message failing on the last receive SQS allows is dead-lettered by
                # the worker, with its reason, before SQS would move it without one.
                pipeline.receive_limit = count
            if count is not None and count < wanted:
                problems.append(f"{queue!r} has maxReceiveCount {count}")
        if problems:
            raise WorkerConfigurationError(
                f"SQS would move messages to the dead-letter queue before the worker's own "
                f"dead-letter path runs (which keeps the reason in the error store): "
                f"{'; '.join(problems)}, but the worker needs at least {wanted} "
                f"(max_deliveries {self.settings.max_deliveries} + dead_letter_margin "
                f"{self.settings.dead_letter_margin}). Raise the queues' maxReceiveCount "
                f"(infra/: the max_receive_count setting) or lower STEPSAGA_MAX_DELIVERIES.")

    async def _with_outage_retry(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        """`call`, tried again with backoff while AWS or the database is unavailable."""
        delay = 0.5
        while True:
            try:
                return await call()
            except Exception as exc:
                if classify_failure(exc) is not FailureKind.OUTAGE and \
                        not looks_like_network_failure(exc):
                    raise
                if self._stop.is_set():
                    raise
                log.warning("%s failed (%s: %s); trying again in %.0f s", what,
                            type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(self.settings.outage_backoff_max_seconds, delay * 2)

    async def run(self, *, install_signal_handlers: bool = True) -> None:
        """Run until stopped (SIGTERM, SIGINT or :meth:`request_stop`)."""
        if not self._pipelines:
            raise ValueError("the worker hosts nothing: add a saga or a consumer first")
        loop = asyncio.get_running_loop()
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self.request_stop)
        if self.settings.health_port is not None:
            self.health = HealthServer(self.settings.health_host, self.settings.health_port,
                                       alive=lambda: not self._stop.is_set(),
                                       ready=self._ready_checks,
                                       metrics=_metrics.prometheus_text)
            await self.health.start()
        background: list[asyncio.Task[Any]] = []
        receivers: list[asyncio.Task[Any]] = []
        outbox: asyncio.Task[None] | None = None
        deleters = {q: _Deleter(self.transport, q, linger=self.settings.delete_linger_seconds)
                    for q in self._pipelines}
        try:
            await self._check_tables()
            await self._check_redrive()
            if self._database_clock is not None:
                await self._with_outage_retry(self._database_clock.sync,
                                              "reading the database's clock")
                background.append(asyncio.create_task(self._clock_loop(self._database_clock)))
            outbox = asyncio.create_task(self.dispatcher.run(
                self._stop, poll_interval=self.settings.outbox_poll_seconds))
            receivers = [asyncio.create_task(self._receive_loop(q, p, deleters[q]))
                         for q, p in self._pipelines.items()]
            receivers.append(asyncio.create_task(self._purge_loop()))
            receivers.append(asyncio.create_task(self._gauge_loop()))
            self._started.set()
            log.info("worker started on %s (event loop %s)", ", ".join(self._pipelines),
                     loop_name(asyncio.get_running_loop()))
            await self._stop.wait()
        finally:
            log.info("worker stopping: finishing %d in-flight messages", self._in_flight)
            self._stop.set()
            for task in receivers:
                task.cancel()
            await asyncio.gather(*receivers, return_exceptions=True)
            if self._tasks:
                _, pending = await asyncio.wait(
                    self._tasks, timeout=self.settings.shutdown_grace_seconds)
                if pending:
                    log.warning("worker stopping: %d messages still in hand after %.0f s "
                                "(shutdown_grace_seconds); they come back when their "
                                "visibility timeout ends", len(pending),
                                self.settings.shutdown_grace_seconds)
            for deleter in deleters.values():
                await deleter.drain()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if outbox is not None:
                await asyncio.gather(outbox, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.dispatcher.drain()
            if self.store_health.up:
                with contextlib.suppress(Exception):
                    await self.dispatcher.run_due()  # flush what is due before leaving
            await self.store_health.close()
            if self.health is not None:
                await self.health.stop()
            if install_signal_handlers:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    with contextlib.suppress(NotImplementedError, RuntimeError):
                        loop.remove_signal_handler(sig)
            for callback in self._on_stop:
                try:
                    await callback()
                except Exception as exc:
                    log.warning("closing on stop failed: %s: %s", type(exc).__name__, exc)
            log.info("worker stopped: %d handled, %d failed, %d held through outages",
                     self.handled, self.failed, self.held)

    async def refresh_gauges(self) -> None:
        """Read the gauges' values from the store now: outbox backlog, oldest due row,
        due timers, the hosted sagas' instances per state."""
        _metrics.gauges.set_database_up(self.store_health.name, self.store_health.up)
        _metrics.gauges.set_outbox(await self.store.outbox_stats(self.clock.now()))
        counts: dict[tuple[str, str], int] = {}
        for name in sorted({h.name for hs in self._handlers.values() for h in hs
                            if isinstance(h, SagaHandler)}):
            for state, count in (await self.store.count_instances(name)).items():
                counts[(name, state)] = count
        _metrics.gauges.set_sagas(counts)

    async def _gauge_loop(self) -> None:
        while not self._stop.is_set():
            if _metrics.enabled() and self.store_health.up:
                try:
                    await self.refresh_gauges()
                except Exception as exc:
                    log.debug("gauges not refreshed: %s", exc)
            else:
                _metrics.gauges.set_database_up(self.store_health.name, self.store_health.up)
            await _sleep_unless(self._stop, self.settings.metrics_interval_seconds)

    async def _clock_loop(self, clock: DatabaseClock) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(clock.refresh_seconds)
            with contextlib.suppress(Exception):  # keeps the last reading meanwhile
                await clock.sync()

    def _outbox_failed(self, error: BaseException) -> None:
        """The outbox poller could not reach the store: that is an outage too."""
        if classify_failure(error) is FailureKind.OUTAGE or looks_like_network_failure(error):
            self.store_health.report_outage(f"{type(error).__name__}: {error}")

    async def _receive_loop(self, queue: str, pipeline: ReceivePipeline,
                            deleter: _Deleter) -> None:
        limit = self._endpoint_limit(queue)
        self._in_flight_at[queue] = 0
        self._receiving[queue] = True
        failures = 0
        arrivals = ArrivalRate()
        full = min(10, limit)
        short_since: float | None = None
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            if not self.store_health.up:
                # Nothing new while the database is down: what is in hand is kept.
                await self.store_health.wait_up(self._stop)
                continue
            free = min(self.settings.concurrency - self._in_flight,
                       limit - self._in_flight_at[queue])
            if free <= 0:
                await asyncio.sleep(0.005)
                continue
            if free < full and self._in_flight_at[queue]:
                # Room for part of a batch only because this queue's own messages are
                # still in hand: wait for a whole batch's room (at most the receive
                # window), rather than split the queue into small receives and commits.
                now = loop.time()
                if short_since is None:
                    short_since = now
                if now - short_since < self.settings.receive_linger_seconds:
                    await asyncio.sleep(0.005)
                    continue
            short_since = None
            try:
                asked_ns = time.time_ns()
                messages = await self.transport.receive(
                    queue, max_messages=min(10, free),
                    wait_seconds=self.settings.wait_time_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                self._receiving[queue] = False
                delay = min(self.settings.outage_backoff_max_seconds, 0.5 * 2 ** (failures - 1))
                if failures == 1 or failures % 20 == 0:
                    log.warning("%s: receive failing (%d in a row: %s: %s); backing off %.1f s",
                                queue, failures, type(exc).__name__, exc, delay)
                await asyncio.sleep(random.uniform(delay / 2, delay))
                continue
            if failures:
                log.warning("%s: receiving again after %d failed receives", queue, failures)
                failures = 0
            self._receiving[queue] = True
            if messages:
                _metrics.consumed.add(len(messages), _metrics.endpoint_attributes(
                    pipeline.physical_name))
                now_ns = time.time_ns()
                for message in messages:
                    # a long poll starts before the message exists: from its sending on
                    begin = max(asked_ns, min(message.sent_ns or 0, now_ns))
                    message.received_ns = (begin, now_ns)
                    message.batch_size = len(messages)
            if not messages and self.settings.wait_time_seconds == 0:
                await asyncio.sleep(0.05)  # short polling: do not spin
            self._in_flight += len(messages)
            self._in_flight_at[queue] += len(messages)
            if self.settings.batch_commits and len(messages) > 1:
                # One transaction per group of the receive (see _handle_batch); the
                # groups run side by side, each on its own connection.
                size = self.settings.batch_commit_size
                for start in range(0, len(messages), size):
                    group = messages[start:start + size]
                    if len(group) > 1:
                        self._start(self._handle_batch(queue, pipeline, deleter, group))
                    else:
                        self._start(self._handle(queue, pipeline, deleter, group[0]))
            else:
                for message in messages:
                    self._start(self._handle(queue, pipeline, deleter, message))
            if 0 < len(messages) < 10:
                # A partial receive: let the next one find a fuller queue, for as long as
                # the queue's rate says it takes to fill a batch (none when it is quiet).
                arrivals.arrived(len(messages))
                wait = batch_wait(arrivals.per_second(), 0, 10,
                                  self.settings.receive_linger_seconds)
                if wait > 0:
                    await _sleep_unless(self._stop, wait)
            elif messages:
                arrivals.arrived(len(messages))

    def _start(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle_batch(self, queue: str, pipeline: ReceivePipeline, deleter: _Deleter,
                            messages: Sequence[ReceivedMessage]) -> None:
        """Commit the messages of one receive in one transaction, delete them once it
        committed; when the batch fails as a whole (all of it rolled back), each of its
        messages is handled on its own — with its own outcome, retries, dead-lettering
        and holding through outages — as without batching."""
        keepers = [asyncio.create_task(self._keep_invisible(queue, m)) for m in messages]
        try:
            try:
                outcomes = await pipeline.handle_batch(messages)
            except Exception as exc:
                log.warning("%s: batch of %d not handled together (%s: %s); handling its "
                            "messages one by one", queue, len(messages), type(exc).__name__,
                            exc)
                outcomes = [None] * len(messages)
        except BaseException:  # cancelled: each message comes back after its timeout
            for keeper in keepers:
                keeper.cancel()
            self._in_flight -= len(messages)
            self._in_flight_at[queue] -= len(messages)
            raise
        acked: list[ReceivedMessage] = []
        alone: list[tuple[ReceivedMessage, asyncio.Task[None]]] = []
        for message, outcome, keeper in zip(messages, outcomes, keepers, strict=True):
            if outcome is None:
                alone.append((message, keeper))
            else:
                keeper.cancel()
                acked.append(message)
        self.handled += len(acked)
        self._in_flight -= len(acked)
        self._in_flight_at[queue] -= len(acked)
        deleter.add_all(acked)  # committed: deleted in one call with the batch
        if alone:
            await asyncio.gather(*(self._handle(queue, pipeline, deleter, message, keeper)
                                   for message, keeper in alone))

    async def _handle(self, queue: str, pipeline: ReceivePipeline, deleter: _Deleter,
                      message: ReceivedMessage,
                      keeper: asyncio.Task[None] | None = None) -> None:
        if keeper is None:
            keeper = asyncio.create_task(self._keep_invisible(queue, message))
        try:
            outcome, reason = await self._handle_through_outages(queue, pipeline, message)
            keeper.cancel()
            if outcome is None:
                return  # stopping while held: it comes back after its visibility timeout
            if outcome is ReceiveOutcome.ACK:
                self.handled += 1
                deleter.add(message)
            elif outcome is ReceiveOutcome.RETRY:
                self.failed += 1
                await self.transport.change_visibility(
                    queue, message, self.redelivery.delay(message.failures))
            else:
                self.failed += 1
                await self.transport.dead_letter(queue, message, reason or "unknown")
        except ReceiptExpiredError as exc:
            # Another delivery owns it now; that one is settled in its turn.
            log.warning("%s: receipt expired before settling (%s); the message will be "
                        "delivered again", queue, exc)
        except Exception as exc:
            # Left as it is: the message reappears after its visibility timeout.
            log.warning("%s: message %s could not be settled (%s: %s); it will be delivered "
                        "again", queue, message.transport_id, type(exc).__name__, exc)
        finally:
            keeper.cancel()
            self._in_flight -= 1
            self._in_flight_at[queue] -= 1

    async def _handle_through_outages(self, queue: str, pipeline: ReceivePipeline,
                                      message: ReceivedMessage
                                      ) -> tuple[ReceiveOutcome | None, str | None]:
        """Handle `message`; while it fails for reasons that are not its own (an outage,
        contention), keep it — visible to nobody, its delivery not spent — and try again:
        after the store is back, or after a short backoff. None when stopping meanwhile."""
        attempt = 0
        while True:
            outcome, reason = await pipeline.handle(message)
            if outcome not in (ReceiveOutcome.OUTAGE, ReceiveOutcome.CONFLICT):
                return outcome, reason
            attempt += 1
            if attempt == 1:
                self.held += 1
            if self._stop.is_set():
                return None, reason
            delay = min(self.settings.outage_backoff_max_seconds, 0.2 * 2 ** min(attempt, 20))
            if outcome is ReceiveOutcome.OUTAGE:
                self.store_health.report_outage(reason or "unknown")
                await self.store_health.wait_up(self._stop)
            await _sleep_unless(self._stop, random.uniform(delay / 2, delay))
            if self._stop.is_set():
                return None, reason

    async def purge(self) -> tuple[int, int]:
        """Drop inbox entries and dispatched outbox rows past their retention."""
        now = self.clock.now()
        return await self.store.purge(
            inbox_before=now - timedelta(hours=self.settings.inbox_retention_hours),
            outbox_before=now - timedelta(hours=self.settings.outbox_retention_hours))

    async def _purge_loop(self) -> None:
        while not self._stop.is_set():
            try:
                removed = await self.purge()
                if any(removed):
                    log.info("purged %d inbox entries and %d outbox rows", *removed)
            except Exception as exc:
                log.warning("retention purge failed (%s: %s); next try in %.0f s",
                            type(exc).__name__, exc, self.settings.purge_interval_seconds)
            await _sleep_unless(self._stop, self.settings.purge_interval_seconds)

    async def _keep_invisible(self, queue: str, message: ReceivedMessage) -> None:
        """Extend the visibility of a message whose handler runs long."""
        timeout = self.settings.visibility_timeout
        while True:
            await asyncio.sleep(max(1.0, timeout / 2))
            try:
                await self.transport.change_visibility(queue, message, timeout)
            except Exception:
                log.warning("%s: could not extend visibility of %s", queue,
                            message.transport_id)
