"""MassTransit's Publish, Send and Respond (and their async factories)."""

from __future__ import annotations

from datetime import timedelta

from core_saga import (
    ConsumeContext,
    Consumer,
    Event,
    Fault,
    Message,
    Saga,
    State,
)
from core_saga.testing import SagaTestHarness

from .dsl_support import Command, Data, Noticed, Start, by_id


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
        from core_saga import decode_envelope
        replies = [decode_envelope(b) for b in h.waiting("replies")]
        assert [(r.request_id, r.message) for r in replies] == [
            ("req-1", Status(id="x", state="Running")), ("req-2", NotFound(id="nope"))]

async def test_fault_message_type_is_registered() -> None:
    assert Fault.message_urn == "urn:message:stepsaga:Fault:v1"
