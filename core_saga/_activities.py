"""The activities a behavior chains: each runs against a BehaviorContext, and each
describes itself so the compiled model, the checks and the graphs can read it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from ._context import SEND, BehaviorContext
from ._envelope import SCHEDULE_TOKEN, new_id
from ._messages import Message, RequestTimeoutExpired
from ._retry import RetryPolicy
from ._states import FINAL, State

Ctx = BehaviorContext[Any, Any]


class Activity:
    """Base class of an activity. Subclass it for a custom activity and add it to a
    behavior with ``binder.activity(...)``."""

    kind: str = "activity"

    async def execute(self, ctx: Ctx) -> None:
        """Run the activity. Raise to fault the behavior."""
        raise NotImplementedError

    def branches(self) -> Sequence[Sequence[Activity]]:
        """Nested activity lists (branches of an if, a catch or retry block)."""
        return ()

    def label(self) -> str:
        """A short description for graphs and errors."""
        return self.kind

    def target_states(self) -> Sequence[State]:
        """States this activity moves the instance to."""
        return ()

    def sent_types(self) -> Sequence[type[Message]]:
        """Message types this activity sends or publishes (for the checks)."""
        return ()


async def run_activities(activities: Sequence[Activity], ctx: Ctx) -> None:
    """Run `activities` in order. An exception goes to the first later `Catch` whose
    type matches; its activities run and the behavior ends there. Otherwise it
    propagates and the message faults."""
    for index, activity in enumerate(activities):
        if isinstance(activity, Catch):
            continue
        try:
            await activity.execute(ctx)
        except Exception as exc:
            for handler in activities[index + 1:]:
                if isinstance(handler, Catch) and isinstance(exc, handler.exception_types):
                    ctx.exception = exc
                    await run_activities(handler.activities, ctx)
                    return
            raise


class Then(Activity):
    kind = "then"

    def __init__(self, fn: Callable[[Ctx], None]) -> None:
        self.fn = fn

    async def execute(self, ctx: Ctx) -> None:
        self.fn(ctx)

    def label(self) -> str:
        return f"then {getattr(self.fn, '__name__', 'fn')}"


class ThenAsync(Activity):
    kind = "then_async"

    def __init__(self, fn: Callable[[Ctx], Awaitable[None]]) -> None:
        self.fn = fn

    async def execute(self, ctx: Ctx) -> None:
        await self.fn(ctx)

    def label(self) -> str:
        return f"then_async {getattr(self.fn, '__name__', 'fn')}"


class If(Activity):
    kind = "if"

    def __init__(self, predicate: Callable[[Ctx], bool] | Callable[[Ctx], Awaitable[bool]],
                 then: Sequence[Activity], otherwise: Sequence[Activity],
                 *, is_async: bool) -> None:
        self.predicate = predicate
        self.then = tuple(then)
        self.otherwise = tuple(otherwise)
        self.is_async = is_async

    async def execute(self, ctx: Ctx) -> None:
        result = self.predicate(ctx)
        if self.is_async:
            result = await result  # type: ignore[misc]
        await run_activities(self.then if result else self.otherwise, ctx)

    def branches(self) -> Sequence[Sequence[Activity]]:
        return (self.then, self.otherwise)

    def label(self) -> str:
        return f"if {getattr(self.predicate, '__name__', 'predicate')}"


class TransitionTo(Activity):
    kind = "transition_to"

    def __init__(self, state: State) -> None:
        self.state = state

    async def execute(self, ctx: Ctx) -> None:
        ctx.transition(self.state.name)

    def target_states(self) -> Sequence[State]:
        return (self.state,)

    def label(self) -> str:
        return "finalize" if self.state is FINAL else f"transition_to {self.state.name}"


class Publish(Activity):
    kind = "publish"

    def __init__(self, factory: Callable[[Ctx], Message],
                 message_type: type[Message] | None = None) -> None:
        self.factory = factory
        self.message_type = message_type

    async def execute(self, ctx: Ctx) -> None:
        ctx.publish(self.factory(ctx))

    def sent_types(self) -> Sequence[type[Message]]:
        return (self.message_type,) if self.message_type else ()

    def label(self) -> str:
        name = self.message_type.__name__ if self.message_type else "message"
        return f"publish {name}"


class Send(Activity):
    kind = "send"

    def __init__(self, destination: str | Callable[[Ctx], str],
                 factory: Callable[[Ctx], Message], *, delay: timedelta | None,
                 message_type: type[Message] | None, compensable: bool,
                 compensation: type[Message] | None) -> None:
        self.destination = destination
        self.factory = factory
        self.delay = delay
        self.message_type = message_type
        self.compensable = compensable
        self.compensation = compensation

    async def execute(self, ctx: Ctx) -> None:
        destination = self.destination(ctx) if callable(self.destination) else self.destination
        ctx.send(destination, self.factory(ctx), delay=self.delay)

    def sent_types(self) -> Sequence[type[Message]]:
        return (self.message_type,) if self.message_type else ()

    def label(self) -> str:
        name = self.message_type.__name__ if self.message_type else "message"
        dest = self.destination if isinstance(self.destination, str) else "…"
        return f"send {name} to {dest}"


class Respond(Activity):
    kind = "respond"

    def __init__(self, factory: Callable[[Ctx], Message]) -> None:
        self.factory = factory

    async def execute(self, ctx: Ctx) -> None:
        ctx.respond(self.factory(ctx))


class ScheduleMessage(Activity):
    kind = "schedule"

    def __init__(self, schedule: Any, factory: Callable[[Ctx], Message],
                 delay: timedelta | None) -> None:
        self.schedule = schedule
        self.factory = factory
        self.delay = delay

    async def execute(self, ctx: Ctx) -> None:
        schedule = self.schedule
        previous = getattr(ctx.saga, schedule.token_field)
        if previous:
            ctx.unscheduled.append(previous)  # rescheduling replaces the old timer
        token = new_id()
        delay = self.delay if self.delay is not None else schedule.delay_for(ctx)
        envelope = ctx.make_envelope(self.factory(ctx), correlation_id=ctx.saga.correlation_id,
                                     headers={SCHEDULE_TOKEN: token})
        ctx.add(SEND, ctx.endpoint, envelope, deliver_at=ctx.now + delay, schedule_token=token)
        setattr(ctx.saga, schedule.token_field, token)

    def label(self) -> str:
        return f"schedule {self.schedule.name}"


class Unschedule(Activity):
    kind = "unschedule"

    def __init__(self, schedule: Any) -> None:
        self.schedule = schedule

    async def execute(self, ctx: Ctx) -> None:
        token = getattr(ctx.saga, self.schedule.token_field)
        if token:
            ctx.unscheduled.append(token)
            setattr(ctx.saga, self.schedule.token_field, None)

    def label(self) -> str:
        return f"unschedule {self.schedule.name}"


class SendRequest(Activity):
    kind = "request"

    def __init__(self, request: Any, factory: Callable[[Ctx], Message]) -> None:
        self.request = request
        self.factory = factory

    async def execute(self, ctx: Ctx) -> None:
        request = self.request
        previous = getattr(ctx.saga, request.request_id_field)
        if previous:
            ctx.unscheduled.append(previous)
        request_id = new_id()
        envelope = ctx.make_envelope(self.factory(ctx), correlation_id=ctx.saga.correlation_id)
        envelope.request_id = request_id
        envelope.response_address = ctx.endpoint
        envelope.fault_address = ctx.endpoint
        ctx.add(SEND, request.destination, envelope)
        setattr(ctx.saga, request.request_id_field, request_id)
        if request.timeout is not None:
            expired = RequestTimeoutExpired(request_id=request_id,
                                            request_type=request.request_type.message_urn)
            timer = ctx.make_envelope(expired, correlation_id=ctx.saga.correlation_id)
            timer.request_id = request_id
            ctx.add(SEND, ctx.endpoint, timer, deliver_at=ctx.now + request.timeout,
                    schedule_token=request_id)

    def sent_types(self) -> Sequence[type[Message]]:
        return (self.request.request_type,)

    def label(self) -> str:
        return f"request {self.request.name}"


class Catch(Activity):
    kind = "catch"

    def __init__(self, exception_types: tuple[type[BaseException], ...],
                 activities: Sequence[Activity]) -> None:
        self.exception_types = exception_types
        self.activities = tuple(activities)

    async def execute(self, ctx: Ctx) -> None:  # pragma: no cover - run_activities skips it
        return None

    def branches(self) -> Sequence[Sequence[Activity]]:
        return (self.activities,)

    def label(self) -> str:
        return "catch " + "|".join(t.__name__ for t in self.exception_types)


class Retry(Activity):
    kind = "retry"

    def __init__(self, policy: RetryPolicy, activities: Sequence[Activity]) -> None:
        self.policy = policy
        self.activities = tuple(activities)

    async def execute(self, ctx: Ctx) -> None:
        delays = self.policy.schedule()
        while True:
            outgoing_mark = len(ctx.outgoing)
            transitions_mark = len(ctx.transitions)
            unscheduled_mark = len(ctx.unscheduled)
            snapshot = ctx.saga.model_copy(deep=True)
            try:
                await run_activities(self.activities, ctx)
                return
            except Exception as exc:
                delay = next(delays, None) if self.policy.should_retry(exc) else None
                if delay is None:
                    raise
                # Undo what the failed attempt did before trying again.
                del ctx.outgoing[outgoing_mark:]
                del ctx.transitions[transitions_mark:]
                del ctx.unscheduled[unscheduled_mark:]
                for name in type(snapshot).model_fields:
                    setattr(ctx.saga, name, getattr(snapshot, name))
                await ctx.clock.sleep(delay)

    def branches(self) -> Sequence[Sequence[Activity]]:
        return (self.activities,)

    def label(self) -> str:
        return f"retry x{self.policy.limit}"
