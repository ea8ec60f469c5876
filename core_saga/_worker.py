"""The worker process: hosts sagas and consumers on queues, with bounded concurrency,
batched deletes, visibility extension, the outbox loop, health, and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from ._clock import Clock, SystemClock
from ._consumer import Consumer
from ._context import SEND
from ._engine import ConsumerHandler, Endpoint, Handler, SagaHandler
from ._errors import ReceiptExpiredError
from ._health import HealthServer
from ._outbox import OutboxDispatcher, OutboxSink, TransportSink
from ._outbox_transaction import Outbox
from ._receive import ReceiveOutcome, ReceivePipeline, RedeliveryPolicy
from ._saga import Saga
from ._settings import WorkerSettings
from ._topology import Topology
from .persistence import SagaStore
from .transports import ReceivedMessage, Transport

log = logging.getLogger("core_saga.worker")


class _Deleter:
    """Collects handled messages and deletes them in batches of up to 10, waiting at
    most `linger` seconds to fill a batch."""

    def __init__(self, transport: Transport, queue: str, *, linger: float = 0.02) -> None:
        self.transport = transport
        self.queue = queue
        self.linger = linger
        self._pending: list[ReceivedMessage] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()

    def add(self, message: ReceivedMessage) -> None:
        self._pending.append(message)
        if len(self._pending) >= 10:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.linger, self._flush)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.create_task(self._delete(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _delete(self, batch: list[ReceivedMessage]) -> None:
        try:
            await self.transport.delete_batch(self.queue, batch)
        except Exception:
            # Not deleted: they come back after the visibility timeout and the inbox
            # absorbs them as duplicates.
            log.exception("%s: batched delete failed", self.queue)

    async def drain(self) -> None:
        """Delete everything collected so far."""
        self._flush()
        if self._running:
            await asyncio.gather(*self._running)


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
        self.clock = clock or SystemClock()
        self.topology = topology or Topology()
        self.dispatcher = OutboxDispatcher(store, {SEND: TransportSink(transport)}, self.clock)
        self.dispatcher.linger = settings.send_linger_seconds
        self.redelivery = RedeliveryPolicy(
            max_deliveries=settings.max_deliveries,
            base_delay=timedelta(seconds=settings.redelivery_base_seconds))
        self._handlers: dict[str, list[Handler]] = {}
        self._pipelines: dict[str, ReceivePipeline] = {}
        self._stop = asyncio.Event()
        self._started = asyncio.Event()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.health: HealthServer | None = None
        self.handled = 0
        self.failed = 0

    # -- what it hosts ----------------------------------------------------------------
    def add_saga(self, saga: Saga[Any], queue: str) -> Worker:
        """Host `saga` on `queue`; its events are subscribed there."""
        return self._add(queue, SagaHandler(saga))

    def add_consumer(self, consumer: Consumer[Any], queue: str) -> Worker:
        """Host `consumer` on `queue`."""
        return self._add(queue, ConsumerHandler(consumer))

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

    def _add(self, queue: str, handler: Handler) -> Worker:
        self._handlers.setdefault(queue, []).append(handler)
        endpoint = Endpoint(queue, self._handlers[queue], store=self.store, clock=self.clock,
                            routes=self.topology.routes,
                            lease=timedelta(seconds=self.settings.visibility_timeout * 2))
        self._pipelines[queue] = ReceivePipeline(endpoint, self.dispatcher, self.clock,
                                                 redelivery=self.redelivery, batch_sends=True,
                                                 max_message_bytes=self.settings.max_message_bytes)
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
        try:
            await asyncio.wait_for(self.store.count_instances("__ready__"), timeout=2)
            checks["database"] = True
        except Exception:
            checks["database"] = False
        return checks

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
                                       ready=self._ready_checks)
            await self.health.start()
        deleters = {q: _Deleter(self.transport, q, linger=self.settings.delete_linger_seconds)
                    for q in self._pipelines}
        outbox = asyncio.create_task(self.dispatcher.run(
            self._stop, poll_interval=self.settings.outbox_poll_seconds))
        receivers = [asyncio.create_task(self._receive_loop(q, p, deleters[q]))
                     for q, p in self._pipelines.items()]
        receivers.append(asyncio.create_task(self._purge_loop()))
        self._started.set()
        log.info("worker started on %s", ", ".join(self._pipelines))
        try:
            await self._stop.wait()
        finally:
            log.info("worker stopping: finishing %d in-flight messages", self._in_flight)
            for task in receivers:
                task.cancel()
            await asyncio.gather(*receivers, return_exceptions=True)
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=self.settings.shutdown_grace_seconds)
            for deleter in deleters.values():
                await deleter.drain()
            await outbox
            with contextlib.suppress(Exception):
                await self.dispatcher.drain()
            with contextlib.suppress(Exception):
                await self.dispatcher.run_due()  # flush what is due before leaving
            if self.health is not None:
                await self.health.stop()
            if install_signal_handlers:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    with contextlib.suppress(NotImplementedError, RuntimeError):
                        loop.remove_signal_handler(sig)
            log.info("worker stopped: %d handled, %d failed", self.handled, self.failed)

    async def _receive_loop(self, queue: str, pipeline: ReceivePipeline,
                            deleter: _Deleter) -> None:
        while not self._stop.is_set():
            free = self.settings.concurrency - self._in_flight
            if free <= 0:
                await asyncio.sleep(0.005)
                continue
            try:
                messages = await self.transport.receive(
                    queue, max_messages=min(10, free),
                    wait_seconds=self.settings.wait_time_seconds)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: receive failed; backing off", queue)
                await asyncio.sleep(1.0)
                continue
            if not messages and self.settings.wait_time_seconds == 0:
                await asyncio.sleep(0.05)  # short polling: do not spin
            for message in messages:
                self._in_flight += 1
                task = asyncio.create_task(self._handle(queue, pipeline, deleter, message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _handle(self, queue: str, pipeline: ReceivePipeline, deleter: _Deleter,
                      message: ReceivedMessage) -> None:
        keeper = asyncio.create_task(self._keep_invisible(queue, message))
        try:
            outcome, reason = await pipeline.handle(message)
            keeper.cancel()
            if outcome is ReceiveOutcome.ACK:
                self.handled += 1
                deleter.add(message)
            elif outcome is ReceiveOutcome.RETRY:
                self.failed += 1
                await self.transport.change_visibility(
                    queue, message, self.redelivery.delay(message.receive_count))
            else:
                self.failed += 1
                await self.transport.dead_letter(queue, message, reason or "unknown")
        except ReceiptExpiredError as exc:
            # Another delivery owns it now; that one is settled in its turn.
            log.warning("%s: receipt expired before settling (%s); the message will be "
                        "delivered again", queue, exc)
        except Exception:
            # Left as it is: the message reappears after its visibility timeout.
            log.exception("%s: message %s could not be settled", queue, message.transport_id)
        finally:
            keeper.cancel()
            self._in_flight -= 1

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
            except Exception:
                log.exception("retention purge failed")
            await asyncio.sleep(self.settings.purge_interval_seconds)

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
