"""The activities a behavior chains: each runs against a BehaviorContext, and each
describes itself so the compiled model, the checks and the graphs can read it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from ._callables import MaybeAwaitable, describe, resolve, returned_type
from ._context import SEND, BehaviorContext
from ._envelope import SCHEDULE_TOKEN, Envelope, new_id
from ._messages import Message, RequestTimeoutExpired
from ._retry import RetryPolicy, RetryWait, current_attempts
from ._states import FINAL, State

Ctx = BehaviorContext[Any, Any]
Factory = Callable[[Ctx], MaybeAwaitable[Message]]
"""Builds an outgoing message from the behavior's context; may be ``async``."""
Configure = Callable[[Ctx, Envelope], MaybeAwaitable[None]]
"""Adjusts an outgoing envelope before it is written (request id, headers…)."""


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
        except RetryWait:
            raise  # a retry waiting for its next attempt is not a failure to catch
        except Exception as exc:
            for handler in activities[index + 1:]:
                if isinstance(handler, Catch) and isinstance(exc, handler.exception_types):
                    ctx.exception = exc
                    await run_activities(handler.activities, ctx)
                    return
            raise


def _sent_type(factory: Callable[..., Any], given: type[Message] | None
               ) -> type[Message] | None:
    """The message type a factory builds: the one given, else its return annotation."""
    return given if given is not None else returned_type(factory, Message)


class Then(Activity):
    kind = "then"

    def __init__(self, fn: Callable[[Ctx], MaybeAwaitable[None]]) -> None:
        self.fn = fn

    async def execute(self, ctx: Ctx) -> None:
        await resolve(self.fn(ctx))

    def label(self) -> str:
        return f"then {describe(self.fn, 'fn')}"


class ThenAsync(Then):
    kind = "then_async"

    def label(self) -> str:
        return f"then_async {describe(self.fn, 'fn')}"


class If(Activity):
    kind = "if"

    def __init__(self, predicate: Callable[[Ctx], MaybeAwaitable[bool]],
                 then: Sequence[Activity], otherwise: Sequence[Activity],
                 *, is_async: bool = False) -> None:
        self.predicate = predicate
        self.then = tuple(then)
        self.otherwise = tuple(otherwise)
        self.is_async = is_async
        """Declared with if_async/if_else_async (every predicate is awaited when async)."""

    async def execute(self, ctx: Ctx) -> None:
        result = await resolve(self.predicate(ctx))
        await run_activities(self.then if result else self.otherwise, ctx)

    def branches(self) -> Sequence[Sequence[Activity]]:
        return (self.then, self.otherwise)

    def condition(self) -> str:
        """The predicate's name (or docstring) for graph edges."""
        return describe(self.predicate, "condition")

    def label(self) -> str:
        return f"if {self.condition()}"


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

    def __init__(self, factory: Factory, message_type: type[Message] | None = None,
                 configure: Configure | None = None) -> None:
        self.factory = factory
        self.message_type = _sent_type(factory, message_type)
        self.configure = configure

    async def execute(self, ctx: Ctx) -> None:
        envelope = ctx.make_envelope(await resolve(self.factory(ctx)))
        if self.configure is not None:
            await resolve(self.configure(ctx, envelope))
        ctx.publish_envelope(envelope)

    def sent_types(self) -> Sequence[type[Message]]:
        return (self.message_type,) if self.message_type else ()

    def label(self) -> str:
        name = self.message_type.__name__ if self.message_type else "message"
        return f"publish {name}"


class Send(Activity):
    kind = "send"

    def __init__(self, destination: str | Callable[[Ctx], MaybeAwaitable[str]],
                 factory: Factory, *, delay: timedelta | None,
                 message_type: type[Message] | None, compensable: bool,
                 compensation: type[Message] | None,
                 configure: Configure | None = None) -> None:
        self.destination = destination
        self.factory = factory
        self.delay = delay
        self.message_type = _sent_type(factory, message_type)
        self.compensable = compensable
        self.compensation = compensation
        self.configure = configure

    async def execute(self, ctx: Ctx) -> None:
        destination = (await resolve(self.destination(ctx)) if callable(self.destination)
                       else self.destination)
        if not destination:
            raise ValueError(f"{self.label()}: the destination function gave "
                             f"{destination!r}, not a queue name")
        envelope = ctx.make_envelope(await resolve(self.factory(ctx)))
        if self.configure is not None:
            await resolve(self.configure(ctx, envelope))
        ctx.send_envelope(destination, envelope, delay=self.delay)

    def sent_types(self) -> Sequence[type[Message]]:
        return (self.message_type,) if self.message_type else ()

    def label(self) -> str:
        name = self.message_type.__name__ if self.message_type else "message"
        dest = self.destination if isinstance(self.destination, str) else "…"
        return f"send {name} to {dest}"


class Respond(Activity):
    kind = "respond"

    def __init__(self, factory: Factory, message_type: type[Message] | None = None,
                 configure: Configure | None = None) -> None:
        self.factory = factory
        self.message_type = _sent_type(factory, message_type)
        self.configure = configure

    async def execute(self, ctx: Ctx) -> None:
        message = await resolve(self.factory(ctx))
        configure = self.configure
        if configure is None:
            ctx.respond(message)
            return
        envelope = ctx.make_response(message)
        await resolve(configure(ctx, envelope))
        ctx.respond_envelope(envelope)

    def sent_types(self) -> Sequence[type[Message]]:
        return (self.message_type,) if self.message_type else ()

    def label(self) -> str:
        name = self.message_type.__name__ if self.message_type else "message"
        return f"respond {name}"


class ScheduleMessage(Activity):
    kind = "schedule"

    def __init__(self, schedule: Any, factory: Factory, delay: timedelta | None) -> None:
        self.schedule = schedule
        self.factory = factory
        self.delay = delay

    async def execute(self, ctx: Ctx) -> None:
        schedule = self.schedule
        previous = getattr(ctx.saga, schedule.token_field)
        if previous:
            ctx.unscheduled.append(previous)  # rescheduling replaces the old timer
        token = new_id()
        delay = self.delay if self.delay is not None else await schedule.delay_for(ctx)
        envelope = ctx.make_envelope(await resolve(self.factory(ctx)),
                                     correlation_id=ctx.saga.correlation_id,
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

    def __init__(self, request: Any, factory: Factory) -> None:
        self.request = request
        self.factory = factory

    async def execute(self, ctx: Ctx) -> None:
        request = self.request
        previous = getattr(ctx.saga, request.request_id_field)
        if previous:
            ctx.unscheduled.append(previous)
        request_id = new_id()
        envelope = ctx.make_envelope(await resolve(self.factory(ctx)),
                                     correlation_id=ctx.saga.correlation_id)
        envelope.request_id = request_id
        envelope.response_address = ctx.endpoint
        envelope.fault_address = ctx.endpoint
        if request.destination is None:
            ctx.publish_envelope(envelope)
        else:
            ctx.send_envelope(request.destination, envelope)
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
    """Runs its block, retrying it under a policy. An attempt's instance changes,
    outgoing messages and transitions are undone before the next one.

    A retry that has to wait does not wait inside the message's transaction: it
    raises :class:`RetryWait`; the endpoint rolls the transaction back, sleeps with no
    transaction open (no locks held: on SQLite other messages go on meanwhile), and
    processes the message again from a fresh read. This block then resumes at its next
    attempt. Immediate retries (no delay) stay in the transaction.
    """

    kind = "retry"

    def __init__(self, policy: RetryPolicy, activities: Sequence[Activity]) -> None:
        self.policy = policy
        self.activities = tuple(activities)

    async def execute(self, ctx: Ctx) -> None:
        attempts = current_attempts()
        if attempts is not None:
            key = attempts.key_for(self)
            delays = attempts.delays(key, self.policy)
            used = attempts.used(key)
        else:  # run outside an endpoint (a custom host): wait in place
            key, delays, used = None, list(self.policy.schedule()), 0
        while True:
            outgoing_mark = len(ctx.outgoing)
            transitions_mark = len(ctx.transitions)
            unscheduled_mark = len(ctx.unscheduled)
            snapshot = ctx.saga.model_copy(deep=True)
            try:
                await run_activities(self.activities, ctx)
                return
            except RetryWait:
                raise
            except Exception as exc:
                if not self.policy.should_retry(exc) or used >= len(delays):
                    raise
                delay = delays[used]
                used += 1
                if attempts is not None and key is not None and delay > 0:
                    attempts.set_used(key, used)
                    raise RetryWait(delay, exc) from exc
                # Undo what the failed attempt did before trying again.
                del ctx.outgoing[outgoing_mark:]
                del ctx.transitions[transitions_mark:]
                del ctx.unscheduled[unscheduled_mark:]
                for name in type(snapshot).model_fields:
                    setattr(ctx.saga, name, getattr(snapshot, name))
                if delay > 0:
                    await ctx.clock.sleep(delay)

    def branches(self) -> Sequence[Sequence[Activity]]:
        return (self.activities,)

    def label(self) -> str:
        return f"retry x{self.policy.limit}"
