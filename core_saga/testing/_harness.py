"""An in-process test harness, like MassTransit's: run sagas and consumers on the
in-memory transport, publish, await states, inspect what was sent, move time."""

from __future__ import annotations

import re
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar

from .._clock import VirtualClock
from .._consumer import Consumer
from .._context import SEND
from .._engine import ConsumerHandler, Endpoint, Handler, SagaHandler, Work
from .._envelope import Envelope, new_id
from .._messages import Message
from .._outbox import OutboxDispatcher, OutboxSink, TransportSink
from .._outbox_transaction import Outbox
from .._receive import ReceiveOutcome, ReceivePipeline, RedeliveryPolicy
from .._saga import Saga
from .._states import SagaState, State
from .._topology import Topology
from ..persistence import HistoryRecord, MemoryStore, SagaStore
from ..transports import InMemoryTransport

M = TypeVar("M", bound=Message)
S = TypeVar("S", bound=SagaState)


def queue_name_for(name: str) -> str:
    """``OrderSaga`` -> ``order-saga``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


class SagaTestHarness:
    """Hosts sagas and consumers in process, on a virtual clock.

    Every call that puts a message in (``publish``, ``send``, ``advance``) runs the
    system until it is idle, so a test reads as a story::

        async with SagaTestHarness() as h:
            h.add_saga(OrderSaga())
            await h.publish(OrderSubmitted(order_id="o-1", amount=10))
            await h.assert_state(OrderSaga, "o-1", OrderSaga.payment_pending)
            assert h.sent(ChargePayment)
    """

    def __init__(self, *, store: SagaStore | None = None, clock: VirtualClock | None = None,
                 redelivery: RedeliveryPolicy | None = None) -> None:
        self.store: SagaStore = store or MemoryStore()
        self.clock = clock or VirtualClock()
        self.transport = InMemoryTransport()
        self.topology = Topology()
        self.dispatcher = OutboxDispatcher(self.store, {SEND: TransportSink(self.transport)},
                                           self.clock)
        self.redelivery = redelivery or RedeliveryPolicy(max_deliveries=1)
        self._handlers: dict[str, list[Handler]] = {}
        self._pipelines: dict[str, ReceivePipeline] = {}
        self._sagas: dict[type, SagaHandler] = {}
        self.consumed: list[Envelope] = []
        """Every envelope an endpoint committed, in order."""
        self.outgoing: list[tuple[str, Envelope, bool]] = []
        """(destination, envelope, published) of every committed outgoing message."""
        self.faults: list[tuple[str, str]] = []
        """(endpoint, reason) of every message that was dead-lettered."""

    # -- set-up ---------------------------------------------------------------------
    def add_saga(self, saga: Saga[Any], queue: str | None = None) -> SagaTestHarness:
        """Host `saga` on `queue` (default: the saga name in kebab case)."""
        handler = SagaHandler(saga)
        self._sagas[type(saga)] = handler
        return self._add(queue or queue_name_for(handler.name), handler)

    def add_consumer(self, consumer: Consumer[Any], queue: str) -> SagaTestHarness:
        """Host `consumer` on `queue`."""
        return self._add(queue, ConsumerHandler(consumer))

    def outbox(self) -> Outbox:
        """An :class:`~core_saga.Outbox` on the harness's store, topology and clock
        (what ``Worker.outbox()`` is in production). Messages it commits are delivered
        by the next ``publish``, ``send``, ``advance`` or :meth:`drain`."""
        return Outbox(self.store, topology=self.topology, dispatcher=self.dispatcher,
                      clock=self.clock)

    def add_sink(self, kind: str, sink: OutboxSink) -> SagaTestHarness:
        """Deliver outbox rows of `kind` (an extension's: EventBridge entries, task-token
        answers) through `sink`."""
        self.dispatcher.add_sink(kind, sink)
        return self

    def _add(self, queue: str, handler: Handler) -> SagaTestHarness:
        self._handlers.setdefault(queue, []).append(handler)
        endpoint = Endpoint(queue, self._handlers[queue], store=self.store, clock=self.clock,
                            routes=self.topology.routes, on_committed=self._committed)
        self._pipelines[queue] = ReceivePipeline(endpoint, self.dispatcher, self.clock,
                                                 redelivery=self.redelivery)
        self.topology.subscribe_all(handler.subscriptions(), queue)
        return self

    def _committed(self, envelope: Envelope, work: Work) -> None:
        self.consumed.append(envelope)
        for item in work.outgoing:
            if item.envelope is not None:
                self.outgoing.append((item.destination, item.envelope, item.published))

    async def __aenter__(self) -> SagaTestHarness:
        await self.store.create_schema()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.store.close()

    # -- putting messages in -----------------------------------------------------------
    def _envelope(self, message: Message, correlation_id: str | None,
                  headers: dict[str, str] | None, message_id: str | None) -> Envelope:
        return Envelope(message=message, message_id=message_id or new_id(),
                        correlation_id=correlation_id, sent_time=self.clock.now(),
                        headers=dict(headers or {}))

    async def publish(self, message: Message, *, correlation_id: str | None = None,
                      headers: dict[str, str] | None = None,
                      message_id: str | None = None) -> Envelope:
        """Publish `message` to its subscribers and run until idle."""
        envelope = self._envelope(message, correlation_id, headers, message_id)
        for queue in self.topology.routes(envelope.message_type):
            await self.send_envelope(queue, envelope, drain=False)
        self.outgoing.append(("", envelope, True))
        await self.drain()
        return envelope

    async def send(self, queue: str, message: Message, *, correlation_id: str | None = None,
                   headers: dict[str, str] | None = None,
                   message_id: str | None = None) -> Envelope:
        """Send `message` to `queue` and run until idle."""
        envelope = self._envelope(message, correlation_id, headers, message_id)
        await self.send_envelope(queue, envelope)
        return envelope

    async def send_envelope(self, queue: str, envelope: Envelope, *, drain: bool = True) -> None:
        """Put a prepared envelope (a duplicate, say) on `queue`."""
        await self.send_raw(queue, envelope.encode(), drain=drain)

    async def send_raw(self, queue: str, body: bytes, *, drain: bool = True) -> None:
        """Put raw bytes on `queue`: for malformed-input tests."""
        from ..transports import TransportMessage

        await self.transport.send_batch(queue, [TransportMessage(body, new_id(), "raw")])
        if drain:
            await self.drain()

    async def advance(self, delta: timedelta) -> None:
        """Move the virtual clock forward and run until idle: due timers fire."""
        self.clock.advance(delta)
        await self.drain()

    async def drain(self, *, max_rounds: int = 10_000) -> None:
        """Deliver and consume until no message is waiting on a hosted queue."""
        for _ in range(max_rounds):
            progressed = await self.dispatcher.run_due() > 0
            for queue, pipeline in self._pipelines.items():
                received = await self.transport.receive(queue, max_messages=10,
                                                        wait_seconds=0)
                for message in received:
                    progressed = True
                    outcome, reason = await pipeline.handle(message)
                    if outcome is ReceiveOutcome.ACK:
                        await self.transport.delete_batch(queue, [message])
                    elif outcome is ReceiveOutcome.RETRY:
                        await self.transport.change_visibility(queue, message, 0)
                    else:
                        self.faults.append((queue, reason or ""))
                        await self.transport.dead_letter(queue, message, reason or "")
            if not progressed:
                return
        raise AssertionError(f"the system did not settle in {max_rounds} rounds")

    # -- looking at what happened --------------------------------------------------------
    async def instance(self, saga: type[Saga[S]], correlation_id: str) -> S | None:
        """The instance as stored, or None (never created, or completed and removed)."""
        model = saga.model
        record = await self.store.get_instance(model.name, correlation_id)
        if record is None:
            return None
        found = model.state_type.model_validate(
            {**record.data, "correlation_id": record.correlation_id,
             "current_state": record.state})
        return found  # type: ignore[return-value]

    async def history(self, saga: type[Saga[Any]], correlation_id: str) -> list[HistoryRecord]:
        """The instance's history, oldest first."""
        return await self.store.history(saga.model.name, correlation_id)

    async def assert_state(self, saga: type[Saga[Any]], correlation_id: str,
                           state: State | str) -> None:
        """Fail, with the instance's history, unless it is in `state`."""
        await self.drain()
        wanted = state.name if isinstance(state, State) else state
        found = await self.instance(saga, correlation_id)
        if found is not None and found.current_state == wanted:
            return
        steps = "\n".join(f"  {h.from_state} --{h.event}--> {h.to_state}"
                          for h in await self.history(saga, correlation_id))
        now = "removed or never created" if found is None else found.current_state
        raise AssertionError(
            f"{saga.model.name} {correlation_id}: expected {wanted}, found {now}\n"
            f"history:\n{steps or '  (none)'}\nfaults: {self.faults}")

    wait_for_state = assert_state

    def sent(self, message_type: type[M] | None = None, *, queue: str | None = None
             ) -> list[M]:
        """Messages sent to queues (not published), optionally of one type or queue."""
        return [e.message for d, e, pub in self.outgoing  # type: ignore[misc]
                if not pub and (message_type is None or isinstance(e.message, message_type))
                and (queue is None or d == queue)]

    def published(self, message_type: type[M] | None = None) -> list[M]:
        """Messages published, optionally of one type."""
        seen: set[str] = set()
        found: list[M] = []
        for _, envelope, pub in self.outgoing:
            if pub and envelope.message_id not in seen and (
                    message_type is None or isinstance(envelope.message, message_type)):
                seen.add(envelope.message_id)
                found.append(envelope.message)  # type: ignore[arg-type]
        return found

    def envelopes(self, message_type: type[Message]) -> list[Envelope]:
        """Committed outgoing envelopes of one type."""
        return [e for _, e, _ in self.outgoing if isinstance(e.message, message_type)]

    def waiting(self, queue: str) -> list[bytes]:
        """Bodies waiting on a queue nobody in the harness consumes."""
        return self.transport.peek(queue)

    def waiting_envelopes(self, queue: str) -> list[Envelope]:
        """The envelopes waiting on a queue nobody in the harness consumes (replies to a
        ``response_address`` outside the harness, say), decoded."""
        from .._envelope import decode_envelope

        return [decode_envelope(body) for body in self.transport.peek(queue)]



