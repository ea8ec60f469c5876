"""Sending from outside a handler: your rows and your messages in one commit.

A consumer gets this from the engine (``ctx.transaction`` + ``ctx.publish``). Code that
starts a conversation — an HTTP endpoint that takes an order, a script — needs the same
guarantee: the order row and the ``OrderSubmitted`` that announces it commit together
or not at all (MassTransit's bus outbox; DBOS's transaction that starts a workflow)::

    outbox = worker.outbox()           # or Outbox(store, topology=..., dispatcher=...)
    async with outbox.transaction() as tx:
        await tx.execute(insert(orders).values(order_id=oid, amount=amount))
        tx.publish(OrderSubmitted(order_id=oid, amount=amount), correlation_id=oid)
    # committed: the message is on its way (or the outbox poller sends it)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy.sql.base import Executable

from ._clock import Clock, SystemClock
from ._context import SEND, UNROUTED, Outgoing
from ._envelope import TRACEPARENT, Envelope, new_id
from ._messages import Message
from ._outbox import OutboxDispatcher
from ._topology import Topology
from ._tracing import current_traceparent, producer_span
from ._transaction import Parameters, Result, ScalarResult
from .persistence import OutboxRow, SagaStore, StoreTransaction

log = logging.getLogger("core_saga.outbox")

Routes = Callable[[str], Sequence[str]]


class OutboxTransaction:
    """One open database transaction: a :class:`~core_saga.Transaction` for your rows
    (``execute``, ``scalar``, ``scalars``, ``savepoint``), plus :meth:`publish` and
    :meth:`send` that write to the outbox. Nothing leaves before the commit."""

    def __init__(self, tx: StoreTransaction, now: datetime, routes: Routes) -> None:
        self._tx = tx
        self.now = now
        """When the transaction began (the messages' ``sentTime``)."""
        self.outgoing: list[Outgoing] = []
        """The messages written so far."""
        self._routes = routes

    # -- the database ------------------------------------------------------------------
    @property
    def dialect(self) -> str:
        return self._tx.dialect

    async def execute(self, statement: Executable, parameters: Parameters = None) -> Result:
        """Run a SQLAlchemy Core statement in this transaction."""
        return await self._tx.execute(statement, parameters)

    async def scalar(self, statement: Executable, parameters: Parameters = None) -> Any:
        """The first column of the first row, or None."""
        return await self._tx.scalar(statement, parameters)

    async def scalars(self, statement: Executable, parameters: Parameters = None
                      ) -> ScalarResult:
        """The first column of every row."""
        return await self._tx.scalars(statement, parameters)

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A block whose writes are undone if it raises."""
        return self._tx.savepoint()

    async def claim_once(self, scope: str, key: str) -> bool:
        """Record `key` in `scope`; False when it was recorded before."""
        return await self._tx.claim_once(scope, key)

    # -- messages ----------------------------------------------------------------------
    def _envelope(self, message: Message, correlation_id: str | None,
                  headers: dict[str, str] | None) -> Envelope:
        out: dict[str, str] = {}
        trace = current_traceparent()
        if trace:
            out[TRACEPARENT] = trace
        if headers:
            out.update(headers)
        return Envelope(message=message, message_id=new_id(), correlation_id=correlation_id,
                        sent_time=self.now, headers=out)

    def _add(self, kind: str, destination: str, envelope: Envelope, *, published: bool,
             deliver_at: datetime | None = None) -> None:
        self.outgoing.append(Outgoing(
            kind=kind, destination=destination, body=envelope.encode(),
            message_id=envelope.message_id, message_type=envelope.message_type,
            correlation_id=envelope.correlation_id, deliver_at=deliver_at,
            envelope=envelope, published=published))

    def publish(self, message: Message, *, correlation_id: str | None = None,
                headers: dict[str, str] | None = None) -> Envelope:
        """Publish an event to every queue subscribed to its type (the topology)."""
        envelope = self._envelope(message, correlation_id, headers)
        producer_span("publish", envelope.message_type, envelope)
        routes = self._routes(envelope.message_type)
        for queue in routes:
            self._add(SEND, queue, envelope, published=True)
        if not routes:
            log.warning("%s published with no subscriber", envelope.message_type)
            self._add(UNROUTED, "", envelope, published=True)
        return envelope

    def send(self, destination: str, message: Message, *, correlation_id: str | None = None,
             delay: timedelta | None = None, headers: dict[str, str] | None = None
             ) -> Envelope:
        """Send a command to the queue `destination`, optionally after `delay`."""
        envelope = self._envelope(message, correlation_id, headers)
        producer_span("send", destination, envelope)
        self._add(SEND, destination, envelope, published=False,
                  deliver_at=self.now + delay if delay else None)
        return envelope


class _Opened:
    """``async with outbox.transaction() as tx``."""

    __slots__ = ("_cm", "_otx", "_outbox", "rows")

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self._cm: AbstractAsyncContextManager[StoreTransaction] | None = None
        self._otx: OutboxTransaction | None = None
        self.rows: list[OutboxRow] = []

    async def __aenter__(self) -> OutboxTransaction:
        outbox = self._outbox
        self._cm = outbox.store.transaction()
        tx = await self._cm.__aenter__()
        self._otx = OutboxTransaction(tx, outbox.clock.now(), outbox.routes)
        return self._otx

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._cm is not None and self._otx is not None
        outbox, otx = self._outbox, self._otx
        if exc_type is None:
            try:
                lease = otx.now + outbox.lease if outbox.dispatcher is not None else None
                self.rows = await otx._tx.add_outbox(otx.outgoing, otx.now, lease)
            except BaseException as error:
                await self._cm.__aexit__(type(error), error, error.__traceback__)
                raise
        await self._cm.__aexit__(exc_type, exc, tb)
        if exc_type is None and self.rows and outbox.dispatcher is not None:
            try:
                await outbox.dispatcher.deliver(self.rows)
            except Exception:
                # Committed rows are safe: the poller sends them when the lease ends.
                log.exception("outbox: immediate dispatch failed; the poller will retry")


class Outbox:
    """Opens transactions that commit your rows and your messages together.

    With a `dispatcher` (a worker's: :meth:`core_saga.Worker.outbox`), the messages are
    sent right after the commit, and leased meanwhile so that no poller sends them
    twice; without one, a worker's outbox poller on the same database sends them within
    its ``outbox_poll_seconds``. Publishing needs the deployment's `topology` (which
    queues subscribe to which types), the same in every process.
    """

    def __init__(self, store: SagaStore, *, topology: Topology | None = None,
                 dispatcher: OutboxDispatcher | None = None, clock: Clock | None = None,
                 lease: timedelta = timedelta(seconds=60)) -> None:
        self.store = store
        self.topology = topology or Topology()
        self.routes: Routes = self.topology.routes
        self.dispatcher = dispatcher
        self.clock = clock or (dispatcher.clock if dispatcher is not None else SystemClock())
        self.lease = lease

    def transaction(self) -> AbstractAsyncContextManager[OutboxTransaction]:
        """A transaction for your rows and messages; it commits when the block ends
        (then the messages go) and rolls back, sending nothing, when the block raises."""
        return _Opened(self)
