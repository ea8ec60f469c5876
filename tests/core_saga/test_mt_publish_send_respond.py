"""MassTransit's Publish, Send and Respond (and their async factories)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from core_saga import (
    BehaviorContext,
    ConsumeContext,
    Consumer,
    Envelope,
    Event,
    Fault,
    Message,
    Saga,
    SagaDefinitionError,
    SagaState,
    State,
    check_model,
)
from core_saga.extension import decode_envelope
from core_saga.testing import SagaTestHarness

from .dsl_support import Command, Data, Noticed, Start, Tick, by_id


class PublishSendSaga(Saga[Data]):
    running = State(terminal=True)
    start = Event(Start, correlate_by=by_id)

    def define(self) -> None:
        self.initially(
            self.when(self.start)
            .publish(lambda ctx: Noticed(id=ctx.saga.correlation_id, value=ctx.message.value))
            .send("commands", lambda ctx: Command(id=ctx.saga.correlation_id))
            .send(lambda ctx: f"per-{ctx.message.value}", lambda ctx: Command(id="dyn"))
            .send("later", lambda ctx: Command(id="late"), delay=timedelta(minutes=5))
            .transition_to(self.running))


class NoticedConsumer(Consumer[Noticed]):
    def __init__(self) -> None:
        self.seen: list[Noticed] = []

    async def consume(self, ctx: ConsumeContext[Noticed]) -> None:
        self.seen.append(ctx.message)


async def test_publish_reaches_subscribers_and_send_reaches_queues() -> None:
    async with SagaTestHarness() as h:
        listener = NoticedConsumer()
        h.add_saga(PublishSendSaga()).add_consumer(listener, "audit")
        start = await h.publish(Start(id="s", value=7))
        assert listener.seen == [Noticed(id="s", value=7)]
        assert h.published(Noticed) == [Noticed(id="s", value=7)]
        assert h.sent(Command, queue="commands") == [Command(id="s")]
        assert h.sent(Command, queue="per-7") == [Command(id="dyn")]
        assert len(h.waiting("commands")) == 1
        assert h.waiting("later") == []  # delayed: still in the outbox
        await h.advance(timedelta(minutes=5))
        assert len(h.waiting("later")) == 1
        [notice] = h.envelopes(Noticed)
        assert notice.correlation_id == "s"
        assert notice.causation_id == start.message_id
        assert notice.conversation_id == start.message_id


class GetStatus(Message):
    message_namespace = "t.req"
    id: str


class Status(Message):
    message_namespace = "t.req"
    id: str
    state: str


class NotFound(Message):
    message_namespace = "t.req"
    id: str


async def _not_found(ctx: ConsumeContext[GetStatus]) -> None:
    ctx.respond(NotFound(id=ctx.message.id))


class RespondSaga(Saga[Data]):
    running = State(terminal=True)
    start = Event(Start, correlate_by=by_id)
    status = Event(GetStatus, correlate_by=lambda m: m.id, on_missing=_not_found)

    def define(self) -> None:
        self.initially(self.when(self.start).transition_to(self.running))
        self.during_any(self.when(self.status).respond(
            lambda ctx: Status(id=ctx.saga.correlation_id, state=ctx.saga.current_state)))


async def test_respond_and_custom_missing_instance_handler() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(RespondSaga())
        await h.publish(Start(id="x"))
        ask = h._envelope(GetStatus(id="x"), "x", None, None)
        ask.request_id, ask.response_address = "req-1", "replies"
        await h.send_envelope("respond-saga", ask)
        missing = h._envelope(GetStatus(id="nope"), "nope", None, None)
        missing.request_id, missing.response_address = "req-2", "replies"
        await h.send_envelope("respond-saga", missing)
        replies = [decode_envelope(b) for b in h.waiting("replies")]
        assert [(r.request_id, r.message) for r in replies] == [
            ("req-1", Status(id="x", state="Running")), ("req-2", NotFound(id="nope"))]


async def test_fault_message_type_is_registered() -> None:
    assert Fault.message_urn == "urn:message:stepsaga:Fault:v1"


# -- async factories, and the message type read from their annotation -------------------------

async def _notice(ctx: BehaviorContext[Data, Start]) -> Noticed:
    return Noticed(id=ctx.saga.correlation_id, value=ctx.message.value * 2)


async def _queue_for(ctx: BehaviorContext[Data, Start]) -> str:
    return f"async-{ctx.message.value}"


async def _command(ctx: BehaviorContext[Data, Start]) -> Command:
    return Command(id=ctx.saga.correlation_id)


async def _undo(ctx: BehaviorContext[Data, Any]) -> Undo:
    return Undo(id=ctx.saga.correlation_id)


class Undo(Message):
    message_namespace = "t.psr"
    id: str


class AsyncFactorySaga(Saga[Data]):
    running = State()
    done = State(terminal=True)
    start = Event(Start, correlate_by=by_id)
    tick = Event(Tick, correlate_by=lambda m: m.id)

    def define(self) -> None:
        self.initially(
            self.when(self.start)
            .publish(_notice)
            .send(_queue_for, _command, compensable=True, compensation=Undo)
            .transition_to(self.running))
        # _undo's annotation tells the compensation check that Undo is sent here.
        self.during(self.running, self.when(self.tick).send("undo", _undo)
                    .transition_to(self.done))


async def test_async_factories_and_destinations_are_awaited() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(AsyncFactorySaga())
        await h.publish(Start(id="a", value=4))
        assert h.published(Noticed) == [Noticed(id="a", value=8)]
        assert h.sent(Command, queue="async-4") == [Command(id="a")]


def test_message_type_is_read_from_the_factorys_return_annotation() -> None:
    sends = {a.label() for _, a in AsyncFactorySaga.model.walk()}
    assert {"publish Noticed", "send Command to …", "send Undo to undo"} <= sends
    assert check_model(AsyncFactorySaga.model) == []
    with pytest.raises(SagaDefinitionError, match="names compensation Undo, which the saga "
                       "never sends"):
        class Unannotated(Saga[Data]):
            running = State()
            done = State(terminal=True)
            start = Event(Start, correlate_by=by_id)
            tick = Event(Tick, correlate_by=lambda m: m.id)

            def define(self) -> None:
                self.initially(self.when(self.start)
                               .send("commands", _command, compensable=True, compensation=Undo)
                               .transition_to(self.running))
                self.during(self.running, self.when(self.tick)
                            .send("undo", lambda ctx: Undo(id="x")).transition_to(self.done))


# -- respond without a response address; a deferred reply keeps its request id ----------------

class Quote(Message):
    message_namespace = "t.psr"
    id: str


class Quoted(Message):
    message_namespace = "t.psr"
    id: str
    price: int


class Approve(Message):
    message_namespace = "t.psr"
    id: str


class QuoteState(SagaState):
    request_id: str | None = None
    response_address: str | None = None


def _keep_requester(ctx: BehaviorContext[QuoteState, Quote]) -> None:
    ctx.saga.request_id = ctx.request_id
    ctx.saga.response_address = ctx.response_address


def _as_reply(ctx: BehaviorContext[QuoteState, Approve], envelope: Envelope) -> None:
    envelope.request_id = ctx.saga.request_id
    envelope.headers["quote-stage"] = "approved"


async def _quoted_now(ctx: BehaviorContext[QuoteState, Quote]) -> Quoted:
    return Quoted(id=ctx.message.id, price=99)


class QuoteSaga(Saga[QuoteState]):
    """Answers at once (`respond`) and again once approved (a deferred reply)."""

    waiting = State()
    approved = State(terminal=True)
    quote = Event(Quote, correlate_by=lambda m: m.id)
    approve = Event(Approve, correlate_by=lambda m: m.id)

    def define(self) -> None:
        self.initially(
            self.when(self.quote)
            .then(_keep_requester)
            .respond(_quoted_now)
            .transition_to(self.waiting))
        self.during(
            self.waiting,
            self.when(self.approve)
            .send(lambda ctx: ctx.saga.response_address or "quotes",
                  lambda ctx: Quoted(id=ctx.saga.correlation_id, price=100),
                  configure=_as_reply)
            .transition_to(self.approved))



async def test_a_deferred_reply_keeps_the_request_id_through_configure() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(QuoteSaga())
        ask = h._envelope(Quote(id="q"), "q", None, None)
        ask.request_id, ask.response_address = "req-7", "requester"
        await h.send_envelope("quote-saga", ask)
        await h.publish(Approve(id="q"))
        replies = [decode_envelope(b) for b in h.waiting("requester")]
        assert [(r.request_id, r.message) for r in replies] == [
            ("req-7", Quoted(id="q", price=99)), ("req-7", Quoted(id="q", price=100))]
        assert replies[1].headers["quote-stage"] == "approved"


class QuotedListener(Consumer[Quoted]):
    def __init__(self) -> None:
        self.seen: list[tuple[str | None, Quoted]] = []

    async def consume(self, ctx: ConsumeContext[Quoted]) -> None:
        self.seen.append((ctx.request_id, ctx.message))


async def test_respond_without_a_response_address_publishes_the_response() -> None:
    async with SagaTestHarness() as h:
        listener = QuotedListener()
        h.add_saga(QuoteSaga()).add_consumer(listener, "quote-listener")
        ask = h._envelope(Quote(id="p"), "p", None, None)
        ask.request_id = "req-8"  # a request id, but nowhere to answer: it is published
        await h.send_envelope("quote-saga", ask)
        assert h.faults == []
        assert listener.seen == [("req-8", Quoted(id="p", price=99))]
        assert h.published(Quoted) == [Quoted(id="p", price=99)]
