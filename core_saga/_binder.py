"""The fluent, typed way to write a behavior:
``self.when(event).then(...).transition_to(...)``.

Every function a behavior takes (``then``, predicates, filters, message factories,
destinations, ``configure`` hooks) may be a plain function or an ``async def``: the
engine awaits whatever is awaitable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Generic, TypeVar

from ._activities import (
    Activity,
    Catch,
    Configure,
    If,
    Publish,
    Respond,
    Retry,
    ScheduleMessage,
    Send,
    SendRequest,
    Then,
    ThenAsync,
    TransitionTo,
    Unschedule,
)
from ._callables import MaybeAwaitable
from ._context import BehaviorContext
from ._envelope import Envelope
from ._events import Event, Request, Schedule
from ._messages import Message
from ._retry import RetryPolicy
from ._states import FINAL, SagaState, State

S = TypeVar("S", bound=SagaState)
M = TypeVar("M", bound=Message)
X = TypeVar("X", bound=Message)

Ctx = BehaviorContext[S, M]


class DslUsageError(TypeError):
    """A DSL method was given something it cannot use; the saga class turns it into a
    SagaDefinitionError naming the saga."""


def _require_event(event: object, where: str) -> None:
    if not isinstance(event, Event):
        raise DslUsageError(f"{where} takes an Event declared on the saga class "
                            f"(self.my_event), got {event!r}")


class EventActivityBinder(Generic[S, M]):
    """The activities to run when `event` arrives. Each method appends one activity
    and returns the binder, so a behavior reads top to bottom."""

    def __init__(self, event: Event[M],
                 filter: Callable[[BehaviorContext[S, M]], MaybeAwaitable[bool]] | None = None
                 ) -> None:
        _require_event(event, "when()")
        self.event = event
        self.filter = filter
        self.activities: list[Activity] = []

    def _branch(self, build: Callable[[EventActivityBinder[S, M]], EventActivityBinder[S, M]]
                ) -> list[Activity]:
        branch: EventActivityBinder[S, M] = EventActivityBinder(self.event)
        result = build(branch)
        if not isinstance(result, EventActivityBinder):
            raise TypeError("a branch builder must return the binder it was given")
        return result.activities

    def activity(self, activity: Activity) -> EventActivityBinder[S, M]:
        """Append a custom activity."""
        self.activities.append(activity)
        return self

    def then(self, fn: Callable[[BehaviorContext[S, M]], MaybeAwaitable[None]]
             ) -> EventActivityBinder[S, M]:
        """Run code: copy data from the message to the instance, compute. An ``async
        def`` is awaited (keep it short: the instance is locked meanwhile)."""
        return self.activity(Then(fn))

    def then_async(self, fn: Callable[[BehaviorContext[S, M]], Awaitable[None]]
                   ) -> EventActivityBinder[S, M]:
        """Run asynchronous code (MassTransit's ThenAsync; ``then`` awaits too)."""
        return self.activity(ThenAsync(fn))

    def if_(self, predicate: Callable[[BehaviorContext[S, M]], MaybeAwaitable[bool]],
            then: Callable[[EventActivityBinder[S, M]], EventActivityBinder[S, M]]
            ) -> EventActivityBinder[S, M]:
        """Run the `then` branch when `predicate` holds."""
        return self.activity(If(predicate, self._branch(then), (), is_async=False))

    def if_async(self, predicate: Callable[[BehaviorContext[S, M]], Awaitable[bool]],
                 then: Callable[[EventActivityBinder[S, M]], EventActivityBinder[S, M]]
                 ) -> EventActivityBinder[S, M]:
        """`if_` with an asynchronous predicate."""
        return self.activity(If(predicate, self._branch(then), (), is_async=True))

    def if_else(self, predicate: Callable[[BehaviorContext[S, M]], MaybeAwaitable[bool]],
                then: Callable[[EventActivityBinder[S, M]], EventActivityBinder[S, M]],
                otherwise: Callable[[EventActivityBinder[S, M]], EventActivityBinder[S, M]]
                ) -> EventActivityBinder[S, M]:
        """Run `then` when `predicate` holds, `otherwise` when not."""
        return self.activity(
            If(predicate, self._branch(then), self._branch(otherwise), is_async=False)
        )

    def if_else_async(self, predicate: Callable[[BehaviorContext[S, M]], Awaitable[bool]],
                      then: Callable[[EventActivityBinder[S, M]], EventActivityBinder[S, M]],
                      otherwise: Callable[[EventActivityBinder[S, M]],
                                          EventActivityBinder[S, M]]
                      ) -> EventActivityBinder[S, M]:
        """`if_else` with an asynchronous predicate."""
        return self.activity(
            If(predicate, self._branch(then), self._branch(otherwise), is_async=True)
        )

    def transition_to(self, state: State | str) -> EventActivityBinder[S, M]:
        """Move the instance to `state` once the activities before it have succeeded.
        A name (``"Done"`` or the attribute's ``"done"``) is checked against the declared
        states when the class is built."""
        if isinstance(state, str):
            state = State(state)
            state.owner = "?"  # a name to resolve when the saga compiles
        elif not isinstance(state, State):
            raise DslUsageError(f"transition_to() takes a State declared on the saga class "
                                f"(self.done) or its name, got {state!r}")
        return self.activity(TransitionTo(state))

    def finalize(self) -> EventActivityBinder[S, M]:
        """Move the instance to the built-in Final state."""
        return self.activity(TransitionTo(FINAL))

    def publish(self, factory: Callable[[BehaviorContext[S, M]], MaybeAwaitable[X]], *,
                message_type: type[Message] | None = None,
                configure: Callable[[BehaviorContext[S, M], Envelope], MaybeAwaitable[None]]
                | None = None) -> EventActivityBinder[S, M]:
        """Publish the event `factory` builds to every subscribed queue.

        `message_type` defaults to the factory's return annotation (the static checks
        and graphs read it). `configure(ctx, envelope)` may set headers or a request id
        on the envelope before it is written.
        """
        return self.activity(Publish(factory, message_type, _configure(configure)))

    def send(self, destination: str | Callable[[BehaviorContext[S, M]], MaybeAwaitable[str]],
             factory: Callable[[BehaviorContext[S, M]], MaybeAwaitable[X]], *,
             delay: timedelta | None = None, message_type: type[Message] | None = None,
             compensable: bool = False, compensation: type[Message] | None = None,
             configure: Callable[[BehaviorContext[S, M], Envelope], MaybeAwaitable[None]]
             | None = None) -> EventActivityBinder[S, M]:
        """Send the command `factory` builds to the queue `destination`.

        Mark a step with side effects ``compensable=True`` and name the message that
        undoes it in ``compensation``; the saga's static checks hold you to it.
        `message_type` defaults to the factory's return annotation. `configure(ctx,
        envelope)` adjusts the envelope before it is written: a deferred reply sets
        ``envelope.request_id`` from the instance so the requester can match it.
        """
        return self.activity(Send(destination, factory, delay=delay, message_type=message_type,
                                  compensable=compensable, compensation=compensation,
                                  configure=_configure(configure)))

    def request(self, request: Request[X, Any],
                factory: Callable[[BehaviorContext[S, M]], MaybeAwaitable[X]]
                ) -> EventActivityBinder[S, M]:
        """Send a request; its response, fault or timeout arrives as
        ``request.completed``, ``request.faulted`` or ``request.timeout_expired``."""
        return self.activity(SendRequest(request, factory))

    def respond(self, factory: Callable[[BehaviorContext[S, M]], MaybeAwaitable[X]], *,
                message_type: type[Message] | None = None,
                configure: Callable[[BehaviorContext[S, M], Envelope], MaybeAwaitable[None]]
                | None = None) -> EventActivityBinder[S, M]:
        """Answer the request that is the current event: at its response address, or,
        when it has none, by publishing the response (as MassTransit does)."""
        return self.activity(Respond(factory, message_type, _configure(configure)))

    def schedule(self, schedule: Schedule[X],
                 factory: Callable[[BehaviorContext[S, M]], MaybeAwaitable[X]],
                 *, delay: timedelta | None = None) -> EventActivityBinder[S, M]:
        """Start (or restart) the durable timer `schedule`."""
        return self.activity(ScheduleMessage(schedule, factory, delay))

    def unschedule(self, schedule: Schedule[Any]) -> EventActivityBinder[S, M]:
        """Cancel the timer `schedule` if one is pending; a no-op otherwise."""
        return self.activity(Unschedule(schedule))

    def catch(self, exception: type[BaseException] | tuple[type[BaseException], ...],
              then: Callable[[EventActivityBinder[S, M]], EventActivityBinder[S, M]]
              ) -> EventActivityBinder[S, M]:
        """Handle an exception raised by an activity before this point; the exception is
        ``ctx.exception``. The behavior ends after the handler."""
        types = exception if isinstance(exception, tuple) else (exception,)
        return self.activity(Catch(types, self._branch(then)))

    def retry(self, policy: RetryPolicy,
              then: Callable[[EventActivityBinder[S, M]], EventActivityBinder[S, M]]
              ) -> EventActivityBinder[S, M]:
        """Run the activities of `then`, retrying them under `policy`."""
        return self.activity(Retry(policy, self._branch(then)))


def _configure(hook: Callable[[Any, Envelope], MaybeAwaitable[None]] | None
               ) -> Configure | None:
    return hook


class IgnoreBinder(Generic[M]):
    """``ignore(event)``: the event is consumed without effect in these states."""

    def __init__(self, event: Event[M],
                 filter: Callable[[Any], MaybeAwaitable[bool]] | None = None) -> None:
        _require_event(event, "ignore()")
        self.event = event
        self.filter = filter


class IgnoreOthers:
    """``ignore_others()``: in these states, every event without a behavior of its own
    (and every message none of whose filters match) is consumed without effect."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ignore_others()"
