"""Events, schedules and requests: what a saga reacts to, and how it finds its instance."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._callables import MaybeAwaitable, resolve
from ._messages import Fault, Message, RequestTimeoutExpired
from ._states import State, pascal_case

if TYPE_CHECKING:
    from ._context import BehaviorContext, ConsumeContext

M = TypeVar("M", bound=Message)
R = TypeVar("R", bound=Message)


class MissingInstance(enum.Enum):
    """What happens when an event finds no instance and cannot create one.

    Set it for a whole saga with the class attribute ``missing_instance``, and for
    one event with ``Event(..., on_missing=...)``, which wins.
    """

    FAULT = "fault"
    """The message faults with SagaNotFoundError (stepsaga's default): it is retried
    with backoff, which heals an event that overtook the one creating the instance,
    and then lands in the error store and the DLQ with the reason."""
    DISCARD = "discard"
    """The message is consumed and dropped, with a log line (MassTransit's default)."""


MissingHandler = Callable[["ConsumeContext[Any]"], Awaitable[None]]
"""A custom missing-instance handler: it may respond, publish or send."""

ReceiptHook = Callable[["ConsumeContext[M]"], Awaitable[bool]]
"""Runs for every delivery of an event (see :class:`Event`); False stops the delivery."""


@dataclass(frozen=True, slots=True)
class Query(Generic[M]):
    """Correlate by a saga property instead of the id: the instance whose indexed
    property `name` equals `value(message)`. Declare the property in the saga's
    ``indexed`` tuple so the repository keeps it searchable."""

    name: str
    value: Callable[[M], object]


class EventKind(enum.Enum):
    EVENT = "event"
    COMPOSITE = "composite"
    SCHEDULE = "schedule"
    REQUEST_COMPLETED = "request_completed"
    REQUEST_FAULTED = "request_faulted"
    REQUEST_TIMEOUT = "request_timeout"


class Event(Generic[M]):
    """An event a saga reacts to, bound to a message type.

    Correlate it in one of three ways: ``correlate_by`` (an expression over the
    message giving the saga's correlation id), ``query`` (a :class:`Query` over an
    indexed saga property), or nothing when the message has a ``correlation_id``
    field. With ``query``, ``select_id`` gives the correlation id of the instance an
    initial event creates when the query finds none (default: the envelope's
    correlation id, else its message id), so that later events correlated by id find
    it. Any of these functions may be ``async``.

    ``on_missing`` says what the event does when it finds no instance and is not in
    ``initially``; None (the default) takes the saga class's ``missing_instance``.

    ``on_receipt`` runs for every delivery of the event, in the message's transaction,
    before the instance is looked up and whatever its state: it may add outgoing
    messages (an acknowledgement, say) and return False to stop there (the delivery
    repeats one already applied). Integrations such as ``bridge`` use it.
    """

    def __init__(
        self,
        message_type: type[M],
        *,
        correlate_by: Callable[[M], object] | None = None,
        query: Query[M] | None = None,
        select_id: Callable[[M], object] | None = None,
        on_missing: MissingInstance | MissingHandler | None = None,
        name: str | None = None,
        on_receipt: ReceiptHook[M] | None = None,
    ) -> None:
        if correlate_by is not None and query is not None:
            raise ValueError("give correlate_by or query, not both")
        if select_id is not None and query is None:
            raise ValueError("select_id is for an event correlated by query=: with "
                             "correlate_by (or a correlation_id field) the id is already "
                             "known")
        self.message_type = message_type
        self.correlate_by = correlate_by
        self.query = query
        self.select_id = select_id
        self.on_missing = on_missing
        self.on_receipt = on_receipt
        self.name = name or ""
        self.kind = EventKind.EVENT
        self.by_envelope = False
        # A discriminator for events sharing one message type (faults, timeouts).
        self.discriminator: Callable[[Message], bool] | None = None
        self.owner_object: Schedule[Any] | Request[Any, Any] | None = None

    def __set_name__(self, owner: type, name: str) -> None:
        if not self.name:
            self.name = pascal_case(name)

    def __repr__(self) -> str:
        return f"Event({self.name!r}, {self.message_type.__name__})"

    @property
    def has_correlation(self) -> bool:
        return (
            self.by_envelope
            or self.correlate_by is not None
            or self.query is not None
            or "correlation_id" in self.message_type.model_fields
        )


class Schedule(Generic[M]):
    """A durable timer: ``schedule`` sends `message_type` back to the saga after
    `delay`; the timer's token is kept in the instance field `token_field` so
    ``unschedule`` can cancel it and a stale timer is recognised and ignored.

    ``received`` is the event the saga handles when the timer fires.
    """

    def __init__(
        self,
        message_type: type[M],
        *,
        token_field: str,
        delay: timedelta | Callable[[BehaviorContext[Any, Any]], MaybeAwaitable[timedelta]],
    ) -> None:
        self.message_type = message_type
        self.token_field = token_field
        self.delay = delay
        self.name = ""
        self.received: Event[M] = Event(message_type)
        self.received.kind = EventKind.SCHEDULE
        self.received.by_envelope = True
        self.received.owner_object = self

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = pascal_case(name)
        self.received.name = f"{self.name}.Received"

    async def delay_for(self, ctx: BehaviorContext[Any, Any]) -> timedelta:
        """The delay for this firing: the fixed one, or what the function returns."""
        if callable(self.delay):
            return await resolve(self.delay(ctx))
        return self.delay

    def __repr__(self) -> str:
        return f"Schedule({self.name!r}, {self.message_type.__name__})"


class Request(Generic[M, R]):
    """A request the saga sends and waits on, with completed, faulted and timeout
    events and a ``pending`` state, as MassTransit's ``Request<,,>``.

    The pending request id is kept in the instance field `request_id_field`;
    responses whose request id no longer matches are ignored as stale. Without a
    `destination` the request is published (as MassTransit does), so whichever
    service subscribes to its type answers it.
    """

    def __init__(
        self,
        request_type: type[M],
        response_type: type[R],
        *,
        destination: str | None = None,
        request_id_field: str,
        timeout: timedelta | None = timedelta(seconds=30),
    ) -> None:
        self.request_type = request_type
        self.response_type = response_type
        self.destination = destination
        self.request_id_field = request_id_field
        self.timeout = timeout if timeout and timeout > timedelta(0) else None
        self.name = ""
        self.pending = State()
        self.completed: Event[R] = Event(response_type)
        self.completed.kind = EventKind.REQUEST_COMPLETED
        self.faulted: Event[Fault] = Event(Fault)
        self.faulted.kind = EventKind.REQUEST_FAULTED
        self.timeout_expired: Event[RequestTimeoutExpired] = Event(RequestTimeoutExpired)
        self.timeout_expired.kind = EventKind.REQUEST_TIMEOUT
        urn = request_type.message_urn
        self.faulted.discriminator = (
            lambda m: isinstance(m, Fault) and m.faulted_message_type == urn
        )
        self.timeout_expired.discriminator = (
            lambda m: isinstance(m, RequestTimeoutExpired) and m.request_type == urn
        )
        for event in (self.completed, self.faulted, self.timeout_expired):
            event.by_envelope = True
            event.owner_object = self

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = pascal_case(name)
        self.pending.name = f"{self.name}.Pending"
        self.pending.owner = owner.__name__
        self.completed.name = f"{self.name}.Completed"
        self.faulted.name = f"{self.name}.Faulted"
        self.timeout_expired.name = f"{self.name}.TimeoutExpired"

    def __repr__(self) -> str:
        return f"Request({self.name!r}, {self.request_type.__name__})"


class CompositeEvent(Event[Message]):
    """An event that happens when every one of `events` has arrived, in any order
    (MassTransit's ``CompositeEvent``): ``flight_and_hotel = CompositeEvent(flight_booked,
    hotel_booked, status_field="booked")``. Handle it like any event,
    ``self.when(self.flight_and_hotel)``; its ``ctx.message`` is the message that
    completed it.

    Which component events have arrived is kept on the instance, in the ``list[str]``
    field `status_field`. Arrivals are tracked in every state but Initial and the end
    states (Final and ``State(terminal=True)``), after the state's own behaviors for
    the component; `include_initial` and `include_final` add those. When the last one
    arrives, the composite event is raised in the state the instance is then in; a
    component that arrives again raises it again, unless `raise_once`.
    """

    def __init__(self, *events: Event[Any], status_field: str, include_initial: bool = False,
                 include_final: bool = False, raise_once: bool = False,
                 name: str | None = None) -> None:
        super().__init__(Message, name=name)
        if not events:
            raise ValueError("a composite event needs at least one event")
        if any(not isinstance(e, Event) or isinstance(e, CompositeEvent) for e in events):
            raise ValueError("a composite event combines declared Events (not composites)")
        self.events: tuple[Event[Any], ...] = tuple(events)
        self.status_field = status_field
        self.include_initial = include_initial
        self.include_final = include_final
        self.raise_once = raise_once
        self.kind = EventKind.COMPOSITE

    @property
    def has_correlation(self) -> bool:
        return True  # never received: its components are

    def __repr__(self) -> str:
        return f"CompositeEvent({self.name!r}, {[e.name for e in self.events]})"
