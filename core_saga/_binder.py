"""The fluent, typed way to write a behavior:
``self.when(event).then(...).transition_to(...)``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Generic, TypeVar

from ._activities import (
    Activity,
    Catch,
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
from ._context import BehaviorContext
from ._events import Event, Request, Schedule
from ._messages import Message
from ._retry import RetryPolicy
from ._states import FINAL, SagaState, State

S = TypeVar("S", bound=SagaState)
M = TypeVar("M", bound=Message)
X = TypeVar("X", bound=Message)

Ctx = BehaviorContext[S, M]


class EventActivityBinder(Generic[S, M]):
    """The activities to run when `event` arrives. Each method appends one activity
    and returns the binder, so a behavior reads top to bottom."""

    def __init__(self, event: Event[M],
                 filter: Callable[[BehaviorContext[S, M]], bool] | None = None) -> None:
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

    def then(self, fn: Callable[[BehaviorContext[S, M]], None]) -> EventActivityBinder[S, M]:
        """Run synchronous code: copy data from the message to the instance, compute."""
        return self.activity(Then(fn))

    def then_async(self, fn: Callable[[BehaviorContext[S, M]], Awaitable[None]]
                   ) -> EventActivityBinder[S, M]:
        """Run asynchronous code. Keep it short: the instance is locked meanwhile."""
        return self.activity(ThenAsync(fn))

    def if_(self, predicate: Callable[[BehaviorContext[S, M]], bool],
            then: Callable[[EventActivityBinder[S, M]], EventActivityBinder[S, M]]
            ) -> EventActivityBinder[S, M]:
        """Run the `then` branch when `predicate` holds."""
        return self.activity(If(predicate, self._branch(then), (), is_async=False))

    def if_async(self, predicate: Callable[[BehaviorContext[S, M]], Awaitable[bool]],
                 then: Callable[[EventActivityBinder[S, M]], EventActivityBinder[S, M]]
                 ) -> EventActivityBinder[S, M]:
        """`if_` with an asynchronous predicate."""
        return self.activity(If(predicate, self._branch(then), (), is_async=True))

    def if_else(self, predicate: Callable[[BehaviorContext[S, M]], bool],
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

    def transition_to(self, state: State) -> EventActivityBinder[S, M]:
        """Move the instance to `state` once the activities before it have succeeded."""
        return self.activity(TransitionTo(state))

    def finalize(self) -> EventActivityBinder[S, M]:
        """Move the instance to the built-in Final state."""
        return self.activity(TransitionTo(FINAL))

    def publish(self, factory: Callable[[BehaviorContext[S, M]], Message], *,
                message_type: type[Message] | None = None) -> EventActivityBinder[S, M]:
        """Publish the event `factory` builds to every subscribed queue."""
        return self.activity(Publish(factory, message_type))

    def send(self, destination: str | Callable[[BehaviorContext[S, M]], str],
             factory: Callable[[BehaviorContext[S, M]], Message], *,
             delay: timedelta | None = None, message_type: type[Message] | None = None,
             compensable: bool = False, compensation: type[Message] | None = None
             ) -> EventActivityBinder[S, M]:
        """Send the command `factory` builds to the queue `destination`.

        Mark a step with side effects ``compensable=True`` and name the message that
        undoes it in ``compensation``; the saga's static checks hold you to it.
        """
        return self.activity(Send(destination, factory, delay=delay, message_type=message_type,
                                  compensable=compensable, compensation=compensation))

    def request(self, request: Request[X, Any],
                factory: Callable[[BehaviorContext[S, M]], X]) -> EventActivityBinder[S, M]:
        """Send a request; its response, fault or timeout arrives as
        ``request.completed``, ``request.faulted`` or ``request.timeout_expired``."""
        return self.activity(SendRequest(request, factory))

    def respond(self, factory: Callable[[BehaviorContext[S, M]], Message]
                ) -> EventActivityBinder[S, M]:
        """Answer the request that is the current event."""
        return self.activity(Respond(factory))

    def schedule(self, schedule: Schedule[X], factory: Callable[[BehaviorContext[S, M]], X],
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


class IgnoreBinder(Generic[M]):
    """``ignore(event)``: the event is consumed without effect in these states."""

    def __init__(self, event: Event[M], filter: Callable[[Any], bool] | None = None) -> None:
        self.event = event
        self.filter = filter
