"""Write your own rows and publish messages in one transaction, outside a consumer.

A consumer gets this for free (``ctx.transaction`` + ``ctx.publish``). Code that starts
a conversation — the order service's HTTP endpoint — needs the same guarantee: the order
row and the ``OrderSubmitted`` it announces commit together or not at all. This does
what ``core_saga.Endpoint.process`` does around a handler, minus the inbox::

    outbox = TransactionalOutbox(store, routes=worker.topology.routes, clock=clock,
                                 dispatcher=worker.dispatcher)
    async with outbox.transaction() as otx:
        await repository_for(otx.tx).insert(order)
        otx.publish(OrderSubmitted(...), correlation_id=order.order_id)
    # committed; the messages are on their way (or the outbox poller sends them)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from core_saga import Clock, Envelope, Message
from core_saga.extension import SEND_KIND, OutboxDispatcher, Outgoing, new_id
from core_saga.persistence import SagaStore
from core_saga.tracing import current_traceparent, producer_span

log = logging.getLogger("examples.order_to_cash.outbox")

Routes = Callable[[str], Sequence[str]]
"""Maps a message-type URN to the queues subscribed to it (``Topology.routes``)."""


class OutboxTransaction:
    """One open store transaction: write rows through :attr:`tx`, and queue messages
    with :meth:`publish` and :meth:`send`. Nothing leaves before the commit."""

    def __init__(self, tx: Any, now: datetime, routes: Routes) -> None:
        self.tx = tx
        """The store transaction (``tx.conn`` on a SQL store)."""
        self.now = now
        self.outgoing: list[Outgoing] = []
        self._routes = routes

    def _envelope(self, message: Message, correlation_id: str | None,
                  headers: dict[str, str] | None) -> Envelope:
        trace = current_traceparent()  # the HTTP request's span: the order's trace root
        out = {"traceparent": trace} if trace else {}
        return Envelope(message=message, message_id=new_id(), correlation_id=correlation_id,
                        sent_time=self.now, headers={**out, **(headers or {})})

    def _add(self, destination: str, envelope: Envelope, *, published: bool,
             deliver_at: datetime | None = None, kind: str = SEND_KIND) -> None:
        self.outgoing.append(Outgoing(
            kind=kind, destination=destination, body=envelope.encode(),
            message_id=envelope.message_id, message_type=envelope.message_type,
            correlation_id=envelope.correlation_id, deliver_at=deliver_at,
            envelope=envelope, published=published))

    def publish(self, message: Message, *, correlation_id: str | None = None,
                headers: dict[str, str] | None = None) -> Envelope:
        """Publish an event to every queue subscribed to its type."""
        envelope = self._envelope(message, correlation_id, headers)
        producer_span("publish", envelope.message_type, envelope)
        routes = self._routes(envelope.message_type)
        for queue in routes:
            self._add(queue, envelope, published=True)
        if not routes:
            log.warning("%s published with no subscriber", envelope.message_type)
            self._add("", envelope, published=True, kind="publish")
        return envelope

    def send(self, destination: str, message: Message, *, correlation_id: str | None = None,
             delay: timedelta | None = None, headers: dict[str, str] | None = None
             ) -> Envelope:
        """Send a command to the queue `destination`, optionally after `delay`."""
        envelope = self._envelope(message, correlation_id, headers)
        producer_span("send", destination, envelope)
        self._add(destination, envelope, published=False,
                  deliver_at=self.now + delay if delay else None)
        return envelope


class TransactionalOutbox:
    """Opens :class:`OutboxTransaction` s on `store`.

    With a `dispatcher` (the worker's, or the test harness's), committed messages are
    sent at once and leased meanwhile so the poller does not race; without one they
    wait for a dispatcher's poller (``OutboxDispatcher.run_due``).
    """

    def __init__(self, store: SagaStore, *, routes: Routes, clock: Clock,
                 dispatcher: OutboxDispatcher | None = None,
                 lease: timedelta = timedelta(seconds=60)) -> None:
        self.store = store
        self.routes = routes
        self.clock = clock
        self.dispatcher = dispatcher
        self.lease = lease

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[OutboxTransaction]:
        """A transaction that commits the caller's rows and the outbox together; it
        rolls back, sending nothing, when the block raises."""
        now = self.clock.now()
        async with self.store.transaction() as tx:
            otx = OutboxTransaction(tx, now, self.routes)
            yield otx
            lease_until = now + self.lease if self.dispatcher is not None else None
            rows = await tx.add_outbox(otx.outgoing, now, lease_until)
        if rows and self.dispatcher is not None:
            try:
                await self.dispatcher.deliver(rows)
            except Exception:
                # Committed rows are safe: the poller sends them when the lease ends.
                log.exception("outbox: immediate dispatch failed; the poller will retry")
