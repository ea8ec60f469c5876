"""Definition errors, static checks, and graph export."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core_saga import (
    Event,
    Message,
    Request,
    Saga,
    SagaDefinitionError,
    SagaState,
    Schedule,
    State,
    to_dot,
    to_mermaid,
)
from core_saga.testing import check_saga
from examples.quickstart.article_saga import ArticleOrderSaga, RefundPayment


class Go(Message):
    message_namespace = "t.def"
    id: str


class Nameless(Message):
    message_namespace = "t.def"
    value: int


class Ask(Message):
    message_namespace = "t.def"
    id: str


class Answer(Message):
    message_namespace = "t.def"
    id: str


class Ping(Message):
    message_namespace = "t.def"
    id: str


class D(SagaState):
    token: str | None = None
    ask_id: str | None = None


def test_transition_to_undeclared_state_names_saga_state_and_event() -> None:
    elsewhere = State("Elsewhere")
    with pytest.raises(SagaDefinitionError) as err:
        class Broken(Saga[D]):
            running = State()
            go = Event(Go, correlate_by=lambda m: m.id)

            def define(self) -> None:
                self.initially(self.when(self.go).transition_to(self.running))
                self.during(self.running, self.when(self.go).transition_to(elsewhere))
    assert str(err.value) == ("saga 'Broken', state 'Running', event 'Go': "
                              "transition to undeclared state 'Elsewhere'; declare it on "
                              "the class (elsewhere = State()) or fix the name")


def test_event_without_correlation_is_refused() -> None:
    with pytest.raises(SagaDefinitionError) as err:
        class Broken(Saga[D]):
            done = State(terminal=True)
            nameless = Event(Nameless)

            def define(self) -> None:
                self.initially(self.when(self.nameless).transition_to(self.done))
    assert str(err.value).startswith("saga 'Broken', event 'Nameless': event has no "
                                     "correlation")


def test_behavior_for_unknown_event_is_refused() -> None:
    stray = Event(Go, correlate_by=lambda m: m.id, name="Stray")
    with pytest.raises(SagaDefinitionError) as err:
        class Broken(Saga[D]):
            done = State(terminal=True)

            def define(self) -> None:
                self.initially(self.when(stray).transition_to(self.done))
    assert "saga 'Broken', state 'Initial', event 'Stray'" in str(err.value)
    assert "not declared on the class" in str(err.value)


def test_missing_token_field_and_generic_parameter_are_refused() -> None:
    with pytest.raises(SagaDefinitionError, match="field 'nope'"):
        class NoField(Saga[D]):
            done = State(terminal=True)
            go = Event(Go, correlate_by=lambda m: m.id)
            tick = Schedule(Ping, token_field="nope", delay=timedelta(seconds=1))

            def define(self) -> None:
                self.initially(self.when(self.go).transition_to(self.done))
    with pytest.raises(SagaDefinitionError, match=r"Saga\[MyState\]"):
        class NoType(Saga):  # type: ignore[type-arg]
            def define(self) -> None:
                pass


def test_static_checks_report_every_rule() -> None:
    class Loose(Saga[D]):
        checks = False
        waiting = State()
        stuck = State()
        done = State(terminal=True)
        go = Event(Go, correlate_by=lambda m: m.id)
        ping = Event(Ping, correlate_by=lambda m: m.id)
        tick = Schedule(Answer, token_field="token", delay=timedelta(seconds=5))
        ask = Request(Ask, Nameless, destination="x", request_id_field="ask_id")

        def define(self) -> None:
            self.initially(
                self.when(self.go)
                .schedule(self.tick, lambda c: Answer(id="a"))
                .request(self.ask, lambda c: Ask(id="a"))
                .send("pay", lambda c: Go(id="a"), compensable=True)
                .send("pay", lambda c: Go(id="b"), compensation=RefundPayment)
                .transition_to(self.waiting))
            self.during(self.waiting,
                        self.when(self.ping).transition_to(self.done),
                        self.when(self.tick.received).transition_to(self.stuck),
                        self.when(self.ask.completed).transition_to(self.done))

    findings = [str(f) for f in check_saga(Loose)]
    assert findings == [
        "saga 'Loose', state 'Stuck': no path from this state reaches a final state "
        "(finalize, or a State(terminal=True))",
        "saga 'Loose', state 'Initial', event 'Ask.Faulted': request 'Ask' is sent here but "
        "'Ask.Faulted' is handled in no state",
        "saga 'Loose', state 'Initial', event 'Ask.TimeoutExpired': request 'Ask' is sent "
        "here but 'Ask.TimeoutExpired' is handled in no state",
        "saga 'Loose', state 'Waiting', event 'Ping': leaves for 'Done' with timer 'Tick' "
        "still pending: unschedule it",
        "saga 'Loose', state 'Waiting', event 'Ask.Completed': leaves for 'Done' with timer "
        "'Tick' still pending: unschedule it",
        "saga 'Loose', state 'Initial', event 'Go': send message to pay is marked compensable "
        "but names no compensation",
        "saga 'Loose', state 'Initial', event 'Go': send message to pay names compensation "
        "RefundPayment, which the saga never sends (declare message_type= on the activity "
        "that sends it)",
    ]
    with pytest.raises(SagaDefinitionError, match="static checks failed"):
        type("Strict", (Loose,), {"checks": True, "define": Loose.define})


def test_the_timer_checks_follow_each_branch_of_an_if_else() -> None:
    """A branch's transition is judged with that branch's own unschedule, and a timer is
    pending only where the branch that scheduled it goes."""
    class Branchy(Saga[D]):
        checks = False
        waiting = State()
        elsewhere = State()  # reached without the timer: need not handle it
        done = State(terminal=True)
        go = Event(Go, correlate_by=lambda m: m.id)
        ping = Event(Ping, correlate_by=lambda m: m.id)
        tick = Schedule(Answer, token_field="token", delay=timedelta(seconds=5))

        def define(self) -> None:
            self.initially(self.when(self.go).if_else(
                lambda c: c.message.id == "a",
                lambda b: b.schedule(self.tick, lambda c: Answer(id="a"))
                .transition_to(self.waiting),
                lambda b: b.transition_to(self.elsewhere)))
            self.during(self.elsewhere, self.when(self.ping).finalize())
            self.during(self.waiting,
                        self.when(self.tick.received).finalize(),
                        # one branch unschedules and leaves; the other leaves without it
                        self.when(self.ping).if_else(
                            lambda c: c.message.id == "x",
                            lambda b: b.unschedule(self.tick).transition_to(self.done),
                            lambda b: b.transition_to(self.done)))

    assert [str(f) for f in check_saga(Branchy)] == [
        "saga 'Branchy', state 'Waiting', event 'Ping': leaves for 'Done' with timer 'Tick' "
        "still pending: unschedule it"]


def test_reference_saga_passes_the_checks() -> None:
    assert check_saga(ArticleOrderSaga) == []


def test_graph_exports_mermaid_and_dot_with_current_state() -> None:
    mermaid = to_mermaid(ArticleOrderSaga.model, highlight="ShippingPending")
    assert mermaid.startswith("stateDiagram-v2\n    [*] --> Initial\n")
    assert "    ShippingPending --> Failed: ShipmentTimeout.Received\n" in mermaid
    assert "    class ShippingPending current\n" in mermaid
    assert "Final" not in mermaid  # not used by this saga
    dot = to_dot(ArticleOrderSaga.model, highlight="Completed")
    assert '"InventoryPending" -> "Failed" [label="InventoryUnavailable"];' in dot
    assert '"Completed" [peripheries=2, style="rounded,filled", fillcolor="#ffb347"];' in dot


def test_model_is_compiled_once_with_behaviors_indexed_by_state_and_event() -> None:
    model = ArticleOrderSaga.model
    assert model.states[0] == "Initial" and "ShippingPending" in model.states
    assert model.lookup("PaymentPending", "PaymentSucceeded") is not None
    assert model.lookup("Completed", "PaymentSucceeded") is None
    assert model.initial_events == frozenset({"OrderSubmitted"})
