"""Every activity of the DSL, run in the harness."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core_saga import (
    BehaviorContext,
    ConsumeContext,
    Consumer,
    Event,
    Fault,
    Message,
    MissingInstance,
    Query,
    Request,
    RetryPolicy,
    Saga,
    SagaState,
    Schedule,
    State,
    Unhandled,
)
from core_saga.testing import SagaTestHarness


class Start(Message):
    message_namespace = "t.act"
    id: str
    value: int = 0
    flag: bool = False


class Poke(Message):
    message_namespace = "t.act"
    id: str
    kind: str = ""


class Noticed(Message):
    message_namespace = "t.act"
    id: str
    value: int


class Command(Message):
    message_namespace = "t.act"
    id: str


class Tick(Message):
    message_namespace = "t.act"
    id: str


def by_id(m: Start | Poke) -> str:
    return m.id


class Data(SagaState):
    value: int = 0
    log: list[str] = []
    tick_token: str | None = None
    attempts: int = 0
    error: str | None = None


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


# -- request / respond ---------------------------------------------------------------

class CheckStock(Message):
    message_namespace = "t.req"
    sku: str


class StockChecked(Message):
    message_namespace = "t.req"
    sku: str
    available: int


class ReqData(SagaState):
    stock_request_id: str | None = None
    available: int | None = None
    outcome: str | None = None


class StockConsumer(Consumer[CheckStock]):
    def __init__(self, mode: str) -> None:
        self.mode = mode

    async def consume(self, ctx: ConsumeContext[CheckStock]) -> None:
        if self.mode == "fail":
            raise RuntimeError("stock service is broken")
        ctx.respond(StockChecked(sku=ctx.message.sku, available=3))


class RequestSaga(Saga[ReqData]):
    completed = State(terminal=True)
    faulted = State(terminal=True)
    timed_out = State(terminal=True)
    start = Event(Start, correlate_by=by_id)
    check_stock = Request(CheckStock, StockChecked, destination="stock",
                          request_id_field="stock_request_id", timeout=timedelta(seconds=30))

    def define(self) -> None:
        self.initially(self.when(self.start)
                       .request(self.check_stock, lambda ctx: CheckStock(sku="sku-1"))
                       .transition_to(self.check_stock.pending))
        self.during(
            self.check_stock.pending,
            self.when(self.check_stock.completed)
            .then(lambda ctx: setattr(ctx.saga, "available", ctx.message.available))
            .transition_to(self.completed),
            self.when(self.check_stock.faulted)
            .then(lambda ctx: setattr(ctx.saga, "outcome",
                                      ctx.message.exceptions[0].message))
            .transition_to(self.faulted),
            self.when(self.check_stock.timeout_expired).transition_to(self.timed_out),
        )


async def test_request_completed_by_response() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(RequestSaga()).add_consumer(StockConsumer("ok"), "stock")
        await h.publish(Start(id="r"))
        await h.assert_state(RequestSaga, "r", RequestSaga.completed)
        r = await h.instance(RequestSaga, "r")
        assert r is not None and r.available == 3 and r.stock_request_id is None
        await h.advance(timedelta(minutes=1))  # the timeout timer was cancelled
        await h.assert_state(RequestSaga, "r", RequestSaga.completed)
        assert await h.store.pending_outbox() == []


async def test_request_faulted_when_consumer_fails() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(RequestSaga()).add_consumer(StockConsumer("fail"), "stock")
        await h.publish(Start(id="r"))
        await h.assert_state(RequestSaga, "r", RequestSaga.faulted)
        r = await h.instance(RequestSaga, "r")
        assert r is not None and "stock service is broken" in (r.outcome or "")
        [error] = await h.store.list_errors(endpoint="stock")
        assert "stock service is broken" in error.reason


async def test_request_times_out_without_response() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(RequestSaga())  # nobody serves the stock queue
        await h.publish(Start(id="r"))
        await h.assert_state(RequestSaga, "r", RequestSaga.check_stock.pending)
        await h.advance(timedelta(seconds=29))
        await h.assert_state(RequestSaga, "r", RequestSaga.check_stock.pending)
        await h.advance(timedelta(seconds=1))
        await h.assert_state(RequestSaga, "r", RequestSaga.timed_out)
        # A late response is stale: ignored, no fault.
        [request_body] = h.waiting("stock")
        from core_saga.extension import decode_envelope
        request = decode_envelope(request_body)
        late = h._envelope(StockChecked(sku="sku-1", available=1), "r", None, None)
        late.request_id = request.request_id
        await h.send_envelope("request-saga", late)
        await h.assert_state(RequestSaga, "r", RequestSaga.timed_out)
        assert h.faults == []


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
        from core_saga.extension import decode_envelope
        replies = [decode_envelope(b) for b in h.waiting("replies")]
        assert [(r.request_id, r.message) for r in replies] == [
            ("req-1", Status(id="x", state="Running")), ("req-2", NotFound(id="nope"))]


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


# -- catch / retry ------------------------------------------------------------------------

class Flaky(Exception):
    pass


class Fatal(Exception):
    pass


class FlakyService:
    def __init__(self, failures: int, exc: type[Exception] = Flaky) -> None:
        self.failures = failures
        self.calls = 0
        self.exc = exc

    async def __call__(self, ctx: BehaviorContext[Data, Start]) -> None:
        self.calls += 1
        ctx.saga.attempts = self.calls
        ctx.publish(Noticed(id=ctx.saga.correlation_id, value=self.calls))
        if self.calls <= self.failures:
            raise self.exc(f"attempt {self.calls} failed")


def _record_error(ctx: BehaviorContext[Data, Start]) -> None:
    ctx.saga.error = f"{type(ctx.exception).__name__}: {ctx.exception}"


def retry_saga(service: FlakyService, policy: RetryPolicy) -> Saga[Data]:
    class RetrySaga(Saga[Data]):
        ok = State(terminal=True)
        caught = State(terminal=True)
        start = Event(Start, correlate_by=by_id)

        def define(self) -> None:
            self.initially(
                self.when(self.start)
                .retry(policy, lambda b: b.then_async(service))
                .transition_to(self.ok)
                .catch(Flaky, lambda b: b.then(_record_error).transition_to(self.caught))
            )
    return RetrySaga()


async def test_retry_succeeds_after_transient_failures_and_keeps_one_attempts_output() -> None:
    service = FlakyService(failures=2)
    async with SagaTestHarness() as h:
        saga = retry_saga(service, RetryPolicy.interval(3, timedelta(seconds=5)))
        h.add_saga(saga, queue="retry")
        before = h.clock.now()
        await h.publish(Start(id="r"))
        await h.assert_state(type(saga), "r", "Ok")
        assert service.calls == 3
        assert h.clock.now() - before == timedelta(seconds=10)  # two 5 s waits
        # Only the successful attempt's publish survives.
        assert [m.value for m in h.published(Noticed)] == [3]


async def test_retry_exhausted_goes_to_catch() -> None:
    service = FlakyService(failures=10)
    async with SagaTestHarness() as h:
        saga = retry_saga(service, RetryPolicy.immediate(2))
        h.add_saga(saga, queue="retry")
        await h.publish(Start(id="r"))
        await h.assert_state(type(saga), "r", "Caught")
        instance = await h.instance(type(saga), "r")
        assert instance is not None and instance.error == "Flaky: attempt 3 failed"
        assert service.calls == 3


async def test_retry_ignore_filter_and_unmatched_catch_fault_the_message() -> None:
    service = FlakyService(failures=10, exc=Fatal)
    async with SagaTestHarness() as h:
        saga = retry_saga(service, RetryPolicy.immediate(5, ignore=(Fatal,)))
        h.add_saga(saga, queue="retry")
        await h.publish(Start(id="r"))
        assert service.calls == 1  # Fatal is not retried
        assert await h.instance(type(saga), "r") is None  # rolled back, not created
        [(queue, reason)] = h.faults
        assert queue == "retry" and "Fatal: attempt 1 failed" in reason
        [error] = await h.store.list_errors()
        assert error.error_type == "Fatal" and '"id":"r"' in error.body


def test_retry_policy_schedules() -> None:
    assert list(RetryPolicy.immediate(2).schedule()) == [0.0, 0.0]
    assert list(RetryPolicy.interval(3, timedelta(seconds=2)).schedule()) == [2.0, 2.0, 2.0]
    assert list(RetryPolicy.incremental(3, timedelta(seconds=1), timedelta(seconds=2))
                .schedule()) == [1.0, 3.0, 5.0]
    exact = RetryPolicy.exponential(5, timedelta(seconds=1), timedelta(seconds=10), jitter=False)
    assert list(exact.schedule()) == [1.0, 2.0, 4.0, 8.0, 10.0]
    jittered = list(RetryPolicy.exponential(5, timedelta(seconds=1),
                                            timedelta(seconds=10)).schedule())
    assert all(0 <= d <= cap for d, cap in zip(jittered, [1, 2, 4, 8, 10], strict=True))
    only = RetryPolicy.immediate(1, handle=(Flaky,))
    assert only.should_retry(Flaky()) and not only.should_retry(Fatal())
    with pytest.raises(ValueError, match="limit"):
        RetryPolicy(-1)


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


async def test_fault_message_type_is_registered() -> None:
    assert Fault.message_urn == "urn:message:stepsaga:Fault:v1"
