"""MassTransit's Then, ThenAsync, If, IfAsync, IfElse and IfElseAsync, and TransitionTo."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from core_saga import (
    BehaviorContext,
    Event,
    Saga,
    SagaDefinitionError,
    State,
    to_dot,
    to_mermaid,
)
from core_saga.testing import SagaTestHarness

from .dsl_support import Data, Start, by_id


async def _lookup(ctx: BehaviorContext[Data, Start]) -> None:
    ctx.saga.log = [*ctx.saga.log, "async"]


async def _is_big(ctx: BehaviorContext[Data, Start]) -> bool:
    return ctx.message.value > 10


def _note(text: str):  # type: ignore[no-untyped-def]
    def apply(ctx: BehaviorContext[Data, Start]) -> None:
        ctx.saga.log = [*ctx.saga.log, text]
    apply.__name__ = f"note_{text}"
    return apply


class BranchSaga(Saga[Data]):
    big = State(terminal=True)
    small = State(terminal=True)
    start = Event(Start, correlate_by=by_id)

    def define(self) -> None:
        self.initially(
            self.when(self.start)
            .then(lambda ctx: setattr(ctx.saga, "value", ctx.message.value))
            .then_async(_lookup)
            .if_(lambda ctx: ctx.message.flag, lambda b: b.then(_note("flag")))
            .if_async(_is_big, lambda b: b.then(_note("async-big")))
            .if_else_async(_is_big, lambda b: b.then(_note("ae-then")),
                           lambda b: b.then(_note("ae-else")))
            .if_else(lambda ctx: ctx.message.value > 10,
                     lambda b: b.transition_to(self.big),
                     lambda b: b.transition_to(self.small))
        )


async def test_then_then_async_and_all_ifs() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(BranchSaga())
        await h.publish(Start(id="a", value=50, flag=True))
        await h.publish(Start(id="b", value=1))
        a = await h.instance(BranchSaga, "a")
        b = await h.instance(BranchSaga, "b")
        assert a is not None and b is not None
        assert (a.current_state, a.value, a.log) == ("Big", 50,
                                                     ["async", "flag", "async-big", "ae-then"])
        assert (b.current_state, b.value, b.log) == ("Small", 1, ["async", "ae-else"])



# -- every callable may be async (an async def is awaited, never left un-run) ----------

async def _is_positive(ctx: BehaviorContext[Data, Start]) -> bool:
    return ctx.message.value > 0


class AsyncEverywhereSaga(Saga[Data]):
    """`then`, `if_`/`if_else` predicates and `when(filter=)` given `async def`s."""

    big = State(terminal=True)
    small = State(terminal=True)
    start = Event(Start, correlate_by=by_id)

    def define(self) -> None:
        self.initially(
            self.when(self.start, filter=_is_positive)
            .then(_lookup)  # an async def handed to then(), not then_async()
            .then(lambda ctx: _lookup(ctx))  # a lambda returning a coroutine
            .if_(_is_big, lambda b: b.then(_note("if-big")))
            .if_else(_is_big, lambda b: b.transition_to(self.big),
                     lambda b: b.transition_to(self.small)))



async def test_async_then_predicates_and_filters_are_awaited() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(AsyncEverywhereSaga())
        await h.publish(Start(id="big", value=20))
        await h.publish(Start(id="small", value=3))
        big = await h.instance(AsyncEverywhereSaga, "big")
        small = await h.instance(AsyncEverywhereSaga, "small")
        assert big is not None and big.current_state == "Big"
        assert big.log == ["async", "async", "if-big"]
        # A false async predicate is false: the if_ branch did not run.
        assert small is not None and small.current_state == "Small"
        assert small.log == ["async", "async"]
        # A false async filter is false: no behavior accepts the message.
        await h.publish(Start(id="zero", value=0))
        assert await h.instance(AsyncEverywhereSaga, "zero") is None
        [(_, reason)] = h.faults
        assert "no behavior's filter accepts this message" in reason


# -- graphs show the branches --------------------------------------------------------------

class _Reviewer:
    """Order needs a person"""

    def __call__(self, ctx: BehaviorContext[Data, Start]) -> bool:
        return ctx.message.flag


def test_if_else_branches_and_filters_are_drawn_on_edges() -> None:
    class Branchy(Saga[Data]):
        review = State(terminal=True)
        big = State(terminal=True)
        small = State(terminal=True)
        start = Event(Start, correlate_by=by_id)

        def define(self) -> None:
            self.initially(
                self.when(self.start, filter=_is_positive)
                .if_else(_Reviewer(), lambda b: b.transition_to(self.review),
                         lambda b: b.if_else(_is_big, lambda b2: b2.transition_to(self.big),
                                             lambda b2: b2.transition_to(self.small))))

    edges = {(t.source, t.target, t.label) for t in Branchy.model.transitions}
    assert edges == {
        ("Initial", "Review", "Start [is_positive, Order needs a person]"),
        ("Initial", "Big", "Start [is_positive, not Order needs a person, is_big]"),
        ("Initial", "Small", "Start [is_positive, not Order needs a person, not is_big]"),
    }
    dot = to_dot(Branchy.model)
    assert '"Initial" -> "Big" [label="Start [is_positive, not Order needs a person, ' \
           'is_big]"];' in dot
    mermaid = to_mermaid(Branchy.model)
    assert "Initial --> Small: Start [is_positive, not Order needs a person, not is_big]" \
        in mermaid


def test_dot_draws_initial_apart_from_the_end_states() -> None:
    dot = to_dot(BranchSaga.model)
    assert '"__start" -> "Initial";' in dot
    assert '"Initial" [style="rounded,bold"];' in dot
    assert '"Big" [peripheries=2];' in dot and '"Small" [peripheries=2];' in dot


# -- transition_to by name, typos, missing settings ------------------------------------------

def test_transition_to_a_state_name_is_resolved_when_the_class_is_built() -> None:
    class ByName(Saga[Data]):
        all_done = State(terminal=True)
        start = Event(Start, correlate_by=by_id)

        def define(self) -> None:
            self.initially(self.when(self.start).transition_to("AllDone"))
            self.during(self.all_done, self.when(self.start).transition_to("all_done"))

    assert {(t.source, t.target) for t in ByName.model.transitions} == {
        ("Initial", "AllDone"), ("AllDone", "AllDone")}


def test_a_typo_in_a_state_name_is_a_definition_error_with_a_suggestion() -> None:
    with pytest.raises(SagaDefinitionError) as err:
        class Typo(Saga[Data]):
            done = State(terminal=True)
            start = Event(Start, correlate_by=by_id)

            def define(self) -> None:
                self.initially(self.when(self.start).transition_to("Dnoe"))
    assert str(err.value) == (
        "saga 'Typo', state 'Initial', event 'Start': transition to undeclared state "
        "'Dnoe' (did you mean 'Done'?); declare it on the class (dnoe = State()) or fix "
        "the name")


def test_a_typo_in_a_member_name_is_a_definition_error_with_a_suggestion() -> None:
    with pytest.raises(SagaDefinitionError) as err:
        class Typo(Saga[Data]):
            done = State(terminal=True)
            start = Event(Start, correlate_by=by_id)

            def define(self) -> None:
                self.initially(self.when(self.start).transition_to(self.dnoe))
    assert str(err.value) == (
        "saga 'Typo': define() uses self.dnoe, which is not declared on the class (declare "
        "it as a class attribute: dnoe = State() or Event(...); did you mean self.done?)")


def test_a_wrong_argument_to_the_dsl_is_a_definition_error() -> None:
    with pytest.raises(SagaDefinitionError, match=r"saga 'Wrong': transition_to\(\) takes a "
                       r"State declared on the saga class"):
        class Wrong(Saga[Data]):
            done = State(terminal=True)
            start = Event(Start, correlate_by=by_id)

            def define(self) -> None:
                self.initially(self.when(self.start).transition_to(self.start))  # type: ignore[arg-type]
    with pytest.raises(SagaDefinitionError, match=r"saga 'Wrong2': when\(\) takes an Event"):
        class Wrong2(Saga[Data]):
            done = State(terminal=True)

            def define(self) -> None:
                self.initially(self.when(self.done).transition_to(self.done))  # type: ignore[arg-type]


class Limits(BaseModel):
    ceiling: int = 10


class SettingsSaga(Saga[Data]):
    done = State(terminal=True)
    start = Event(Start, correlate_by=by_id)

    def define(self) -> None:
        self.initially(
            self.when(self.start)
            .then(lambda ctx: setattr(ctx.saga, "value", ctx.settings().ceiling))
            .transition_to(self.done))


class TypedSettingsSaga(SettingsSaga):
    settings_type = Limits


def test_a_saga_with_settings_type_refuses_to_be_created_without_them() -> None:
    with pytest.raises(SagaDefinitionError) as err:
        TypedSettingsSaga()
    assert str(err.value) == (
        "saga 'TypedSettingsSaga': needs settings of type Limits and was given no "
        "settings: create it as TypedSettingsSaga(Limits(...))")
    assert TypedSettingsSaga(Limits()).settings == Limits()


async def test_a_behavior_reading_missing_settings_faults_naming_saga_state_and_event() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(SettingsSaga())
        await h.publish(Start(id="s"))
        [(_, reason)] = h.faults
        assert reason == (
            "SagaDefinitionError: saga 'SettingsSaga', state 'Initial', event 'Start': this "
            "behavior reads the saga's settings, but the saga was created without any: host "
            "it as SettingsSaga(settings)")
    async with SagaTestHarness() as h:
        h.add_saga(SettingsSaga(Limits(ceiling=3)))
        await h.publish(Start(id="s"))
        found = await h.instance(SettingsSaga, "s")
        assert found is not None and found.value == 3
