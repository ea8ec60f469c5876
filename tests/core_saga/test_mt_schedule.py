"""MassTransit's Schedule and Unschedule: durable timers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core_saga import (
    BehaviorContext,
    Event,
    Saga,
    Schedule,
    State,
)
from core_saga.testing import SagaTestHarness

from .dsl_support import Data, Poke, Start, Tick, by_id

# -- schedule / unschedule -------------------------------------------------------------

class TimerSaga(Saga[Data]):
    waiting = State()
    expired = State(terminal=True)
    stopped = State(terminal=True)
    start = Event(Start, correlate_by=by_id)
    poke = Event(Poke, correlate_by=by_id)
    tick = Schedule(Tick, token_field="tick_token", delay=timedelta(minutes=10))

    def define(self) -> None:
        self.initially(self.when(self.start)
                       .schedule(self.tick, lambda ctx: Tick(id=ctx.saga.correlation_id))
                       .transition_to(self.waiting))
        self.during(
            self.waiting,
            self.when(self.poke, filter=lambda ctx: ctx.message.kind == "stop")
            .unschedule(self.tick).transition_to(self.stopped),
            self.when(self.poke, filter=lambda ctx: ctx.message.kind == "snooze")
            .schedule(self.tick, lambda ctx: Tick(id=ctx.saga.correlation_id)),
            self.when(self.tick.received).transition_to(self.expired),
        )


async def test_schedule_fires_when_due() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(TimerSaga())
        await h.publish(Start(id="t"))
        t = await h.instance(TimerSaga, "t")
        assert t is not None and t.tick_token
        await h.advance(timedelta(minutes=9))
        await h.assert_state(TimerSaga, "t", TimerSaga.waiting)
        await h.advance(timedelta(minutes=1))
        await h.assert_state(TimerSaga, "t", TimerSaga.expired)
        t = await h.instance(TimerSaga, "t")
        assert t is not None and t.tick_token is None


async def test_unschedule_cancels_and_reschedule_replaces() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(TimerSaga())
        await h.publish(Start(id="u"))
        await h.publish(Poke(id="u", kind="stop"))
        assert await h.store.pending_outbox() == []
        await h.advance(timedelta(hours=1))
        await h.assert_state(TimerSaga, "u", TimerSaga.stopped)

        await h.publish(Start(id="v"))
        await h.advance(timedelta(minutes=8))
        await h.publish(Poke(id="v", kind="snooze"))  # restarts the 10 minutes
        assert len(await h.store.pending_outbox()) == 1
        await h.advance(timedelta(minutes=8))
        await h.assert_state(TimerSaga, "v", TimerSaga.waiting)
        await h.advance(timedelta(minutes=2))
        await h.assert_state(TimerSaga, "v", TimerSaga.expired)


async def test_stale_timer_is_ignored() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(TimerSaga())
        await h.publish(Start(id="w"))
        [row] = await h.store.pending_outbox()
        # The timer is delivered, but the instance no longer holds its token.
        await h.publish(Poke(id="w", kind="stop"))
        from core_saga.extension import decode_envelope
        await h.send_envelope("timer-saga", decode_envelope(row.body))
        await h.assert_state(TimerSaga, "w", TimerSaga.stopped)
        assert h.faults == []



async def _delay_for(ctx: BehaviorContext[Data, Any]) -> timedelta:
    return timedelta(minutes=ctx.saga.value)


async def _tick(ctx: BehaviorContext[Data, Any]) -> Tick:
    return Tick(id=ctx.saga.correlation_id)


class AsyncTimerSaga(Saga[Data]):
    """The delay and the message of a timer from async functions."""

    waiting = State()
    expired = State(terminal=True)
    start = Event(Start, correlate_by=by_id)
    tick = Schedule(Tick, token_field="tick_token", delay=_delay_for)

    def define(self) -> None:
        self.initially(self.when(self.start)
                       .then(lambda ctx: setattr(ctx.saga, "value", ctx.message.value))
                       .schedule(self.tick, _tick)
                       .transition_to(self.waiting))
        self.during(self.waiting, self.when(self.tick.received).transition_to(self.expired))


async def test_a_timer_delay_and_message_may_come_from_async_functions() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(AsyncTimerSaga())
        await h.publish(Start(id="t", value=3))
        await h.advance(timedelta(minutes=2))
        await h.assert_state(AsyncTimerSaga, "t", "Waiting")
        await h.advance(timedelta(minutes=1))
        await h.assert_state(AsyncTimerSaga, "t", "Expired")
