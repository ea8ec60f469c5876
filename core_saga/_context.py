"""What a consumer or a saga behavior sees: the message, and a way to send more."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy.sql.base import Executable

from ._clock import Clock
from ._envelope import TASK_TOKEN, TRACEPARENT, Envelope, new_id
from ._errors import SagaDefinitionError
from ._messages import Message
from ._states import SagaState
from ._tracing import current_traceparent, producer_span
from ._transaction import Parameters, Result, ScalarResult, StatementError, Transaction

if TYPE_CHECKING:
    from ._saga import Saga

M = TypeVar("M", bound=Message)
S = TypeVar("S", bound=SagaState)

SEND = "send"
"""Outbox kind of a message bound for a queue through the transport."""
UNROUTED = "publish"
"""Outbox kind of an event published while no queue subscribes to its type: kept (never
sent) so that timelines and the test harness still show it."""


@dataclass(slots=True)
class Outgoing:
    """One message waiting in the outbox of the current transaction."""

    kind: str
    """Which sink delivers it: ``send`` for the transport, or an extension's kind."""
    destination: str
    body: bytes
    message_id: str
    message_type: str
    correlation_id: str | None = None
    deliver_at: datetime | None = None
    schedule_token: str | None = None
    envelope: Envelope | None = None
    published: bool = False


PublishRoutes = Callable[[str], Sequence[str]]
"""Maps a message-type URN to the queues subscribed to it."""


class _NoTransaction:
    """``ctx.transaction`` of a context made outside any transaction (a fault being
    recorded): every use says so."""

    dialect = "none"

    def _fail(self) -> StatementError:
        return StatementError("this context has no database transaction")

    async def execute(self, statement: Executable, parameters: Parameters = None) -> Result:
        raise self._fail()

    async def scalar(self, statement: Executable, parameters: Parameters = None) -> Any:
        raise self._fail()

    async def scalars(self, statement: Executable, parameters: Parameters = None
                      ) -> ScalarResult:
        raise self._fail()

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        raise self._fail()

    async def claim_once(self, scope: str, key: str) -> bool:
        raise self._fail()


_NO_TRANSACTION: Transaction = _NoTransaction()


class ConsumeContext(Generic[M]):
    """The message being consumed, and `publish`/`send`/`respond` that write to the
    transactional outbox: nothing leaves before the transaction commits."""

    __slots__ = ("_routes", "clock", "endpoint", "envelope", "message", "now", "outgoing",
                 "transaction")

    def __init__(self, envelope: Envelope, *, endpoint: str, clock: Clock,
                 routes: PublishRoutes, outgoing: list[Outgoing] | None = None,
                 transaction: Transaction | None = None) -> None:
        self.envelope = envelope
        self.message: M = envelope.message  # type: ignore[assignment]
        self.endpoint = endpoint
        self.clock = clock
        self.now: datetime = clock.now()
        self.transaction: Transaction = transaction if transaction is not None \
            else _NO_TRANSACTION
        """The database transaction this message is handled in: write your own tables
        with SQLAlchemy Core statements (``await ctx.transaction.execute(insert(t)...)``);
        they commit with the inbox entry, the saga and the outbox, or not at all."""
        self._routes = routes
        self.outgoing: list[Outgoing] = [] if outgoing is None else outgoing

    @property
    def message_id(self) -> str:
        return self.envelope.message_id

    @property
    def correlation_id(self) -> str | None:
        return self.envelope.correlation_id

    @property
    def task_token(self) -> str | None:
        """The Step Functions task token the message carries, if any."""
        return self.envelope.headers.get(TASK_TOKEN)

    def _default_correlation(self) -> str | None:
        return self.envelope.correlation_id

    def make_envelope(self, message: Message, *, correlation_id: str | None = None,
                      headers: dict[str, str] | None = None) -> Envelope:
        """An envelope for `message` that carries this conversation and trace on."""
        incoming = self.envelope
        out_headers: dict[str, str] = {}
        trace = current_traceparent() or incoming.headers.get(TRACEPARENT)
        if trace:
            out_headers[TRACEPARENT] = trace
        if headers:
            out_headers.update(headers)
        return Envelope(
            message=message,
            message_id=new_id(),
            correlation_id=correlation_id if correlation_id is not None
            else self._default_correlation(),
            conversation_id=incoming.conversation_id or incoming.message_id,
            causation_id=incoming.message_id,
            sent_time=self.now,
            headers=out_headers,
        )

    def add(self, kind: str, destination: str, envelope: Envelope, *,
            deliver_at: datetime | None = None, schedule_token: str | None = None,
            published: bool = False) -> Outgoing:
        """Add an envelope for a sink to the outbox; extensions use this."""
        record = Outgoing(
            kind=kind, destination=destination, body=envelope.encode(),
            message_id=envelope.message_id, message_type=envelope.message_type,
            correlation_id=envelope.correlation_id, deliver_at=deliver_at,
            schedule_token=schedule_token, envelope=envelope, published=published,
        )
        self.outgoing.append(record)
        return record

    def add_raw(self, kind: str, destination: str, body: bytes, *, message_type: str,
                message_id: str | None = None, correlation_id: str | None = None) -> Outgoing:
        """Add a non-envelope body (an EventBridge entry, a task-token answer)."""
        record = Outgoing(kind=kind, destination=destination, body=body,
                          message_id=message_id or new_id(), message_type=message_type,
                          correlation_id=correlation_id if correlation_id is not None
                          else self._default_correlation())
        self.outgoing.append(record)
        return record

    def publish(self, message: Message, *, headers: dict[str, str] | None = None) -> Envelope:
        """Publish an event to every queue subscribed to its type."""
        return self.publish_envelope(self.make_envelope(message, headers=headers))

    def publish_envelope(self, envelope: Envelope) -> Envelope:
        """Publish a prepared envelope (from :meth:`make_envelope`)."""
        producer_span("publish", envelope.message_type, envelope)
        routes = self._routes(envelope.message_type)
        for queue in routes:
            self.add(SEND, queue, envelope, published=True)
        if not routes:
            # Kept (undeliverable) so the timeline and the test harness still show it.
            self.add(UNROUTED, "", envelope, published=True)
        return envelope

    def send(self, destination: str, message: Message, *, delay: timedelta | None = None,
             headers: dict[str, str] | None = None,
             correlation_id: str | None = None) -> Envelope:
        """Send a command to the queue `destination`, optionally after `delay`."""
        envelope = self.make_envelope(message, headers=headers, correlation_id=correlation_id)
        return self.send_envelope(destination, envelope, delay=delay)

    def send_envelope(self, destination: str, envelope: Envelope, *,
                      delay: timedelta | None = None) -> Envelope:
        """Send a prepared envelope (from :meth:`make_envelope`) to `destination`."""
        producer_span("send", destination, envelope)
        deliver_at = self.now + delay if delay else None
        self.add(SEND, destination, envelope, deliver_at=deliver_at)
        return envelope

    @property
    def request_id(self) -> str | None:
        """The request id of the message, when it is a request (keep it on the instance
        to answer later: ``send(..., configure=...)`` sets it on the reply)."""
        return self.envelope.request_id

    @property
    def response_address(self) -> str | None:
        """Where the requester wants the response, when it said."""
        return self.envelope.response_address

    def make_response(self, message: Message) -> Envelope:
        """The envelope answering the request being consumed (its request id set)."""
        incoming = self.envelope
        envelope = self.make_envelope(message, correlation_id=incoming.correlation_id)
        envelope.request_id = incoming.request_id
        return envelope

    def respond(self, message: Message) -> Envelope:
        """Answer the request being consumed, at its response address. A message
        without one has its response published, as MassTransit does: the requester
        (or anyone) subscribes to the response type."""
        return self.respond_envelope(self.make_response(message))

    def respond_envelope(self, envelope: Envelope) -> Envelope:
        """Send a prepared response (from :meth:`make_response`)."""
        address = self.envelope.response_address
        if not address:
            return self.publish_envelope(envelope)
        return self.send_envelope(address, envelope)


class BehaviorContext(ConsumeContext[M], Generic[S, M]):
    """The context of a saga behavior: the instance (`saga`), the event's message,
    the machine (`machine`, with its settings) and, inside `catch`, the exception."""

    __slots__ = ("event_name", "exception", "machine", "saga", "transitions", "unscheduled")

    def __init__(self, envelope: Envelope, *, saga: S, machine: Saga[S], event_name: str,
                 endpoint: str, clock: Clock, routes: PublishRoutes,
                 outgoing: list[Outgoing] | None = None,
                 transaction: Transaction | None = None) -> None:
        super().__init__(envelope, endpoint=endpoint, clock=clock, routes=routes,
                         outgoing=outgoing, transaction=transaction)
        self.saga: S = saga
        self.machine = machine
        self.event_name = event_name
        self.exception: BaseException | None = None
        self.transitions: list[tuple[str, str]] = []
        self.unscheduled: list[str] = []
        """Tokens of timers cancelled by this behavior."""

    def _default_correlation(self) -> str | None:
        return self.saga.correlation_id

    @property
    def state(self) -> str:
        """The instance's current state name."""
        return self.saga.current_state

    def transition(self, to: str) -> None:
        """Move the instance to state `to` (the `transition_to` activity calls this)."""
        self.transitions.append((self.saga.current_state, to))
        self.saga.current_state = to

    def settings(self) -> Any:
        """The settings object the saga was created with. Raises
        :class:`SagaDefinitionError` naming the saga, state and event when it was
        created without one."""
        settings = self.machine.settings
        if settings is None:
            raise SagaDefinitionError(
                type(self.machine).saga_name,
                "this behavior reads the saga's settings, but the saga was created without "
                f"any: host it as {type(self.machine).__name__}(settings)",
                state=self.saga.current_state, event=self.event_name)
        return settings
