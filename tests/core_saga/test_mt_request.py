"""MassTransit's Request: completed, faulted, timeout, and the pending state."""

from __future__ import annotations

from datetime import timedelta

from core_saga import (
    ConsumeContext,
    Consumer,
    Event,
    Message,
    Request,
    Saga,
    SagaState,
    State,
)
from core_saga.testing import SagaTestHarness

from .dsl_support import Start, by_id

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
        from core_saga import decode_envelope
        request = decode_envelope(request_body)
        late = h._envelope(StockChecked(sku="sku-1", available=1), "r", None, None)
        late.request_id = request.request_id
        await h.send_envelope("request-saga", late)
        await h.assert_state(RequestSaga, "r", RequestSaga.timed_out)
        assert h.faults == []

