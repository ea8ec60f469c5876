"""MassTransit's Request: completed, faulted, timeout, and the pending state."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core_saga import (
    BehaviorContext,
    ConsumeContext,
    Consumer,
    Event,
    Message,
    Request,
    Saga,
    SagaDefinitionError,
    SagaState,
    State,
    to_dot,
    to_mermaid,
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
        from core_saga.extension import decode_envelope
        request = decode_envelope(request_body)
        late = h._envelope(StockChecked(sku="sku-1", available=1), "r", None, None)
        late.request_id = request.request_id
        await h.send_envelope("request-saga", late)
        await h.assert_state(RequestSaga, "r", RequestSaga.timed_out)
        assert h.faults == []



# -- a request without a destination is published ------------------------------------------------

async def _ask(ctx: BehaviorContext[ReqData, Start]) -> CheckStock:
    return CheckStock(sku=f"sku-{ctx.message.value}")


class PublishedRequestSaga(Saga[ReqData]):
    completed = State(terminal=True)
    faulted = State(terminal=True)
    timed_out = State(terminal=True)
    start = Event(Start, correlate_by=by_id)
    check_stock = Request(CheckStock, StockChecked, request_id_field="stock_request_id")

    def define(self) -> None:
        self.initially(self.when(self.start)
                       .request(self.check_stock, _ask)
                       .transition_to(self.check_stock.pending))
        self.during(
            self.check_stock.pending,
            self.when(self.check_stock.completed)
            .then(lambda ctx: setattr(ctx.saga, "available", ctx.message.available))
            .transition_to(self.completed),
            self.when(self.check_stock.faulted).transition_to(self.faulted),
            self.when(self.check_stock.timeout_expired).transition_to(self.timed_out),
        )



async def test_a_request_without_destination_is_published_to_its_subscribers() -> None:
    async with SagaTestHarness() as h:
        h.add_saga(PublishedRequestSaga(), queue="published-request")
        h.add_consumer(StockConsumer("ok"), "stock-subscriber")
        await h.publish(Start(id="r", value=5))
        await h.assert_state(PublishedRequestSaga, "r", "Completed")
        [request] = h.envelopes(CheckStock)
        assert request.response_address == "published-request"
        assert h.published(CheckStock) == [CheckStock(sku="sku-5")]
        instance = await h.instance(PublishedRequestSaga, "r")
        assert instance is not None and instance.available == 3


# -- the pending state: checked, and drawn only when used ----------------------------------------

def test_a_request_answered_only_in_a_pending_state_nobody_enters_is_refused() -> None:
    with pytest.raises(SagaDefinitionError) as err:
        class Forgot(Saga[ReqData]):
            completed = State(terminal=True)
            failed = State(terminal=True)
            start = Event(Start, correlate_by=by_id)
            check_stock = Request(CheckStock, StockChecked, destination="stock",
                                  request_id_field="stock_request_id", timeout=None)

            def define(self) -> None:
                self.initially(self.when(self.start).request(self.check_stock, _ask))
                self.during(self.check_stock.pending,
                            self.when(self.check_stock.completed).transition_to(self.completed),
                            self.when(self.check_stock.faulted).transition_to(self.failed))
    assert ("request 'CheckStock' is answered only in 'CheckStock.Pending', which no behavior "
            "enters: add .transition_to(self.check_stock.pending) after .request(...)"
            ) in str(err.value)


def test_the_pending_state_is_drawn_connected_and_an_unused_one_not_at_all() -> None:
    mermaid = to_mermaid(RequestSaga.model)
    assert "Initial --> CheckStock_Pending: Start" in mermaid
    assert "CheckStock_Pending --> Completed: CheckStock.Completed" in mermaid

    class InPlace(Saga[ReqData]):
        waiting = State()
        completed = State(terminal=True)
        start = Event(Start, correlate_by=by_id)
        check_stock = Request(CheckStock, StockChecked, destination="stock",
                              request_id_field="stock_request_id", timeout=None)

        def define(self) -> None:
            self.initially(self.when(self.start).request(self.check_stock, _ask)
                           .transition_to(self.waiting))
            self.during(self.waiting,
                        self.when(self.check_stock.completed).transition_to(self.completed),
                        self.when(self.check_stock.faulted).transition_to(self.completed))

    assert "Pending" not in to_mermaid(InPlace.model)
    assert "Pending" not in to_dot(InPlace.model)
