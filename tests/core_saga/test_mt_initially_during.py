"""MassTransit's Initially, During, DuringAny, Ignore, Finalize and SetCompleted; out-of-order
events; unhandled events."""

from __future__ import annotations

import pytest

from core_saga import (
    Event,
    Message,
    MissingInstance,
    Query,
    Saga,
    SagaDefinitionError,
    SagaState,
    State,
    Unhandled,
)
from core_saga.testing import SagaTestHarness

from .dsl_support import Data, Poke, Start, Tick, by_id


class FinalizeSaga(Saga[Data]):
    running = State()
    done = State(terminal=True)
    start = Event(Start, correlate_by=by_id)
    poke = Event(Poke, correlate_by=by_id)

    def define(self) -> None:
        self.initially(self.when(self.start).transition_to(self.running))
        self.during(self.running,
                    self.when(self.poke, filter=lambda ctx: ctx.message.kind == "finish")
                    .finalize(),
                    self.when(self.poke, filter=lambda ctx: ctx.message.kind == "done")
                    .transition_to(self.done))
        self.set_completed_when_finalized()


class PredicateSaga(Saga[Data]):
    done = State(terminal=True)
    start = Event(Start, correlate_by=by_id)

    def define(self) -> None:
        self.initially(self.when(self.start).transition_to(self.done))
        self.set_completed(lambda saga: saga.current_state == "Done")


async def test_finalize_removes_instance_when_completed_when_finalized() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(FinalizeSaga())
        await h.publish(Start(id="f"))
        await h.publish(Poke(id="f", kind="ignored-by-filters"))
        await h.assert_state(FinalizeSaga, "f", FinalizeSaga.running)
        # No filter accepts it: an unhandled event, not a silent no-op.
        [(_, reason)] = h.faults
        assert reason.startswith("UnhandledEventError: saga 'FinalizeSaga', instance 'f', "
                                 "state 'Running', event 'Poke'")
        assert reason.endswith("no behavior's filter accepts this message in this state")
        await h.publish(Poke(id="f", kind="finish"))
        assert await h.instance(FinalizeSaga, "f") is None
        history = await h.history(FinalizeSaga, "f")
        assert history[-1].to_state == "Final"  # the history outlives the instance
        await h.publish(Start(id="g"))
        await h.publish(Poke(id="g", kind="done"))
        await h.assert_state(FinalizeSaga, "g", "Done")  # not Final: kept


async def test_set_completed_predicate_removes_instance() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(PredicateSaga())
        await h.publish(Start(id="p"))
        assert await h.instance(PredicateSaga, "p") is None
        assert [r.to_state for r in await h.history(PredicateSaga, "p")] == ["Done"]

# -- missing instances, unhandled events, out of order, ignore, during_any, query ------

class Accepted(Message):
    message_namespace = "t.ooo"
    id: str


class SubmitOrder(Message):
    message_namespace = "t.ooo"
    id: str
    note: str


class OooData(SagaState):
    note: str | None = None


class OutOfOrderSaga(Saga[OooData]):
    """MassTransit's out-of-order example: either message may come first."""

    submitted = State()
    accepted = State(terminal=True)
    submit = Event(SubmitOrder, correlate_by=lambda m: m.id)
    accept = Event(Accepted, correlate_by=lambda m: m.id)

    def define(self) -> None:
        self.initially(
            self.when(self.submit).then(lambda c: setattr(c.saga, "note", c.message.note))
            .transition_to(self.submitted),
            self.when(self.accept).transition_to(self.accepted))
        self.during(self.submitted, self.when(self.accept).transition_to(self.accepted))
        self.during(self.accepted,
                    self.when(self.submit).then(lambda c: setattr(c.saga, "note", c.message.note)))


async def test_out_of_order_events_reach_the_same_state() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(OutOfOrderSaga())
        await h.publish(SubmitOrder(id="in-order", note="a"))
        await h.publish(Accepted(id="in-order"))
        await h.publish(Accepted(id="reversed"))
        await h.publish(SubmitOrder(id="reversed", note="b"))
        for cid, note in (("in-order", "a"), ("reversed", "b")):
            await h.assert_state(OutOfOrderSaga, cid, OutOfOrderSaga.accepted)
            instance = await h.instance(OutOfOrderSaga, cid)
            assert instance is not None and instance.note == note
        assert h.faults == []


class StrictSaga(Saga[Data]):
    running = State(terminal=True)
    start = Event(Start, correlate_by=by_id)
    poke = Event(Poke, correlate_by=by_id)
    discarded = Event(Tick, correlate_by=lambda m: m.id, on_missing=MissingInstance.DISCARD)

    def define(self) -> None:
        self.initially(self.when(self.start).transition_to(self.running))
        self.during(self.running, self.ignore(self.discarded))


class LenientSaga(StrictSaga):
    unhandled = Unhandled.IGNORE

    def define(self) -> None:
        super().define()


async def test_unhandled_event_faults_with_a_clear_error_by_default() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(StrictSaga())
        await h.publish(Start(id="s"))
        await h.publish(Poke(id="s"))
        [(_, reason)] = h.faults
        assert reason.startswith("UnhandledEventError: saga 'StrictSaga', instance 's', "
                                 "state 'Running', event 'Poke'")


async def test_unhandled_event_can_be_configured_to_be_ignored() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(LenientSaga())
        await h.publish(Start(id="s"))
        await h.publish(Poke(id="s"))
        assert h.faults == []
        await h.assert_state(LenientSaga, "s", "Running")


async def test_missing_instance_fault_and_discard_and_ignore() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(StrictSaga())
        await h.publish(Poke(id="ghost"))
        await h.publish(Tick(id="ghost"))  # on_missing=DISCARD
        [(_, reason)] = h.faults
        assert "SagaNotFoundError" in reason and "'ghost'" in reason and "'Poke'" in reason
        await h.publish(Start(id="s"))
        await h.publish(Tick(id="s"))  # ignored in Running
        assert len(h.faults) == 1
        assert [r.event for r in await h.history(StrictSaga, "s")] == ["Start"]


class Rename(Message):
    message_namespace = "t.query"
    order_number: str
    name: str


class QData(SagaState):
    order_number: str | None = None
    name: str | None = None


class QuerySaga(Saga[QData]):
    indexed = ("order_number",)
    open = State()
    closed = State(terminal=True)
    start = Event(Start, correlate_by=by_id)
    rename = Event(Rename, query=Query("order_number", lambda m: m.order_number))
    poke = Event(Poke, correlate_by=by_id)

    def define(self) -> None:
        self.initially(self.when(self.start).then(
            lambda c: setattr(c.saga, "order_number", f"ON-{c.message.value}"))
            .transition_to(self.open))
        self.during(self.open, self.when(self.rename).then(
            lambda c: setattr(c.saga, "name", c.message.name)))
        self.during_any(self.when(self.poke).transition_to(self.closed))


async def test_query_correlation_and_during_any() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(QuerySaga())
        await h.publish(Start(id="q1", value=1))
        await h.publish(Start(id="q2", value=2))
        await h.publish(Rename(order_number="ON-2", name="second"))
        q2 = await h.instance(QuerySaga, "q2")
        q1 = await h.instance(QuerySaga, "q1")
        assert q2 is not None and q2.name == "second"
        assert q1 is not None and q1.name is None
        await h.publish(Poke(id="q1"))
        await h.assert_state(QuerySaga, "q1", QuerySaga.closed)
        await h.publish(Poke(id="q1"))  # during_any covers Closed too
        assert h.faults == []



# -- set_completed with an async predicate -------------------------------------------------

async def _is_done(saga: Data) -> bool:
    return saga.current_state == "Done"


class AsyncCompletedSaga(Saga[Data]):
    running = State()
    done = State(terminal=True)
    start = Event(Start, correlate_by=by_id)
    poke = Event(Poke, correlate_by=by_id)

    def define(self) -> None:
        self.initially(self.when(self.start).transition_to(self.running))
        self.during(self.running, self.when(self.poke).transition_to(self.done))
        self.set_completed(_is_done)



async def test_an_async_set_completed_predicate_is_awaited() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(AsyncCompletedSaga())
        await h.publish(Start(id="a"))
        await h.assert_state(AsyncCompletedSaga, "a", "Running")  # kept: not complete yet
        await h.publish(Poke(id="a"))
        assert await h.instance(AsyncCompletedSaga, "a") is None


# -- ignore and when of one event in one state ------------------------------------------------

def test_ignore_and_when_in_two_during_blocks_is_a_definition_error() -> None:
    with pytest.raises(SagaDefinitionError) as err:
        class Both(Saga[Data]):
            running = State()
            done = State(terminal=True)
            start = Event(Start, correlate_by=by_id)
            poke = Event(Poke, correlate_by=by_id)

            def define(self) -> None:
                self.initially(self.when(self.start).transition_to(self.running))
                self.during(self.running, self.ignore(self.poke))
                self.during(self.running, self.done, self.when(self.poke).transition_to(self.done))
    assert str(err.value).startswith(
        "saga 'Both', state 'Running', event 'Poke': the event is both handled (when) and "
        "ignored (ignore) in this state, in different during()/during_any() blocks")


def test_during_any_ignore_and_a_states_when_is_a_definition_error() -> None:
    with pytest.raises(SagaDefinitionError, match="both handled"):
        class Both(Saga[Data]):
            running = State()
            done = State(terminal=True)
            start = Event(Start, correlate_by=by_id)
            poke = Event(Poke, correlate_by=by_id)

            def define(self) -> None:
                self.initially(self.when(self.start).transition_to(self.running))
                self.during(self.running, self.when(self.poke).transition_to(self.done))
                self.during_any(self.ignore(self.poke))


def test_a_behavior_behind_an_unfiltered_ignore_is_a_definition_error() -> None:
    with pytest.raises(SagaDefinitionError, match="would never run"):
        class Hidden(Saga[Data]):
            running = State()
            done = State(terminal=True)
            start = Event(Start, correlate_by=by_id)
            poke = Event(Poke, correlate_by=by_id)

            def define(self) -> None:
                self.initially(self.when(self.start).transition_to(self.running))
                self.during(self.running, self.ignore(self.poke),
                            self.when(self.poke).transition_to(self.done))
    with pytest.raises(SagaDefinitionError, match="never applies"):
        class Moot(Saga[Data]):
            running = State()
            done = State(terminal=True)
            start = Event(Start, correlate_by=by_id)
            poke = Event(Poke, correlate_by=by_id)

            def define(self) -> None:
                self.initially(self.when(self.start).transition_to(self.running))
                self.during(self.running, self.when(self.poke).transition_to(self.done),
                            self.ignore(self.poke))


class FallbackSaga(Saga[Data]):
    """Filtered whens with the ignore last in the same during(): the allowed fallback."""

    running = State()
    done = State(terminal=True)
    start = Event(Start, correlate_by=by_id)
    poke = Event(Poke, correlate_by=by_id)

    def define(self) -> None:
        self.initially(self.when(self.start).transition_to(self.running))
        self.during(self.running,
                    self.when(self.poke, filter=lambda ctx: ctx.message.kind == "done")
                    .transition_to(self.done),
                    self.ignore(self.poke))


async def test_filtered_whens_with_a_trailing_ignore_ignore_what_the_filters_leave() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(FallbackSaga())
        await h.publish(Start(id="f"))
        await h.publish(Poke(id="f", kind="other"))
        await h.assert_state(FallbackSaga, "f", "Running")
        await h.publish(Poke(id="f", kind="done"))
        await h.assert_state(FallbackSaga, "f", "Done")
        assert h.faults == []
    assert {(t.source, t.target) for t in FallbackSaga.model.transitions} == {
        ("Initial", "Running"), ("Running", "Done")}


# -- ignore_others ------------------------------------------------------------------------------

class QuietEndSaga(Saga[Data]):
    running = State()
    done = State(terminal=True)
    start = Event(Start, correlate_by=by_id)
    poke = Event(Poke, correlate_by=by_id)
    tick = Event(Tick, correlate_by=lambda m: m.id)

    def define(self) -> None:
        self.initially(self.when(self.start).transition_to(self.running))
        self.during(self.running,
                    self.when(self.poke, filter=lambda ctx: ctx.message.kind == "done")
                    .transition_to(self.done))
        self.during(self.done, self.ignore_others())


async def test_ignore_others_ignores_every_event_without_a_behavior_in_those_states() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(QuietEndSaga())
        await h.publish(Start(id="q"))
        await h.publish(Tick(id="q"))  # Running has no behavior for it: faults
        assert len(h.faults) == 1 and "UnhandledEventError" in h.faults[0][1]
        await h.publish(Poke(id="q", kind="done"))
        for late in (Start(id="q"), Poke(id="q"), Tick(id="q")):
            await h.publish(late)
        await h.assert_state(QuietEndSaga, "q", "Done")
        assert len(h.faults) == 1
        assert [r.event for r in await h.history(QuietEndSaga, "q")] == ["Start", "Poke"]
    assert QuietEndSaga.model.unhandled_policy("Done") is Unhandled.IGNORE
    assert QuietEndSaga.model.unhandled_policy("Running") is Unhandled.FAULT


def test_ignore_others_is_refused_in_initially() -> None:
    with pytest.raises(SagaDefinitionError, match=r"ignore_others\(\) does not apply in "
                       r"initially\(\)"):
        class Early(Saga[Data]):
            done = State(terminal=True)
            start = Event(Start, correlate_by=by_id)

            def define(self) -> None:
                self.initially(self.when(self.start).transition_to(self.done),
                               self.ignore_others())  # type: ignore[arg-type]


# -- a subclass redeclares a state or an event ---------------------------------------------------

class Shout(Message):
    message_namespace = "t.override"
    order: str


class BaseFlow(Saga[Data]):
    running = State()
    done = State(terminal=True)
    start = Event(Start, correlate_by=by_id)
    poke = Event(Poke, correlate_by=by_id)

    def define(self) -> None:
        self.initially(self.when(self.start).transition_to(self.running))
        self.during(self.running, self.when(self.poke).transition_to(self.done))


class LoudFlow(BaseFlow):
    """Overrides an event (another message type) and a state (its name), nothing else."""

    poke = Event(Shout, correlate_by=lambda m: m.order)  # type: ignore[assignment]
    done = State("Finished", terminal=True)


async def test_a_subclass_member_replaces_the_parents_in_its_behaviors() -> None:
    assert set(LoudFlow.model.states) == {"Initial", "Running", "Finished", "Final"}
    assert LoudFlow.model.events["Poke"].message_type is Shout
    assert BaseFlow.model.events["Poke"].message_type is Poke  # the parent is untouched
    async with SagaTestHarness() as h:
        h.add_saga(LoudFlow())
        await h.publish(Start(id="l"))
        await h.publish(Shout(order="l"))
        await h.assert_state(LoudFlow, "l", "Finished")
        assert h.faults == []
