"""OpenTelemetry end to end: one order is one trace — the saga, the services and back,
through the outbox — with consume, handle, transition, send and publish spans; the
trace context rides in the envelope (and in SQS attributes) and on into the hand-off to
Step Functions and its reply."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from core_saga import WorkerSettings
from core_saga.emulator import Emulator
from core_saga.emulator.pytest_plugin import AwsScope
from core_saga.persistence import SagaStore
from core_saga.tracing import current_traceparent, otlp_tracer_provider, use_tracer_provider
from examples.order_to_cash import OrderSaga
from examples.order_to_cash.queues import ORDER_SAGA_QUEUE

from .stack import supervised_stack
from .support import order_request, start_order_to_cash


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    use_tracer_provider(provider)
    try:
        yield exporter
    finally:
        use_tracer_provider(None)


def _by_name(finished: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in finished if s.name == name]


async def test_an_order_is_one_trace_through_saga_and_services(
        spans: InMemorySpanExporter, sqlite_store: SagaStore) -> None:
    app = await start_order_to_cash(sqlite_store)
    order_id = await app.submit()
    await app.h.assert_state(OrderSaga, order_id, OrderSaga.completed)
    finished = spans.get_finished_spans()
    saga_spans = [s for s in finished
                  if s.attributes and s.attributes.get("stepsaga.correlation_id") == order_id]
    assert {s.context.trace_id for s in finished} == {saga_spans[0].context.trace_id}
    names = {s.name for s in finished}
    assert {"order-saga process", "payment process", "inventory process", "shipping process",
            "handle OrderSaga", "handle ChargePaymentConsumer", "payment create",
            "transition PaymentPending -> InventoryPending",
            "transition ShippingPending -> Completed"} <= names
    # The consumer's span is the child of the producer span of the message it took.
    (send,) = _by_name(finished, "payment create")
    assert send.kind is SpanKind.PRODUCER
    (consume,) = [s for s in _by_name(finished, "payment process")
                  if s.attributes and s.attributes["stepsaga.message_type"].endswith(
                      "ChargePayment:v1")]
    assert consume.kind is SpanKind.CONSUMER
    assert consume.parent is not None and consume.parent.span_id == send.context.span_id
    # The envelope on the queue carries the producer span's context.
    (envelope,) = [e for e in app.h.consumed if e.message_id == consume.attributes[
        "messaging.message.id"]]
    assert envelope.headers["traceparent"].split("-")[2] == f"{send.context.span_id:016x}"


async def test_a_hand_off_carries_the_trace_to_the_workflow_and_back(
        spans: InMemorySpanExporter, sqlite_store: SagaStore) -> None:
    app = await start_order_to_cash(sqlite_store)
    order_id = await app.submit(order_request(risk_flags=("new_account",)))
    (request,) = app.supervisor.requests("ManualReview")
    assert request.traceparent is not None
    trace_id = int(request.traceparent.split("-")[1], 16)
    await app.supervisor.complete(request, "approved")  # the reply carries it back
    await app.h.assert_state(OrderSaga, order_id, OrderSaga.completed)
    process = [s for s in spans.get_finished_spans() if s.name == "order-saga process"]
    assert process and {s.context.trace_id for s in process} == {trace_id}


async def test_a_malformed_traceparent_starts_a_new_trace_and_fails_nothing(
        spans: InMemorySpanExporter, sqlite_store: SagaStore) -> None:
    app = await start_order_to_cash(sqlite_store)
    order_id = await app.submit()
    spans.clear()
    envelope = app.h.consumed[0]
    envelope.headers["traceparent"] = "00-not-a-trace-context"
    envelope.message_id = "fresh-id"  # not a duplicate
    await app.h.send_envelope(ORDER_SAGA_QUEUE, envelope)
    assert app.h.faults == []
    (process,) = [s for s in spans.get_finished_spans() if s.name == "order-saga process"]
    assert process.parent is None  # a new trace
    await app.h.assert_state(OrderSaga, order_id, OrderSaga.completed)


def test_tracing_is_off_without_a_provider() -> None:
    use_tracer_provider(None)
    assert current_traceparent() is None


@pytest.mark.emulator
@pytest.mark.timeout(120)
async def test_over_sqs_eventbridge_and_step_functions_it_stays_one_trace(
        spans: InMemorySpanExporter, emulator: Emulator, aws: AwsScope,
        sqlite_store: SagaStore, monkeypatch: pytest.MonkeyPatch) -> None:
    async with supervised_stack(emulator, aws, sqlite_store, monkeypatch) as stack:
        await stack.submit("traced", ("LAMP-1", 1, "1500.00"))
        (task,) = await stack.review_tasks(1)
        stack.approve(task)
        assert await stack.outcome("traced") == "Completed"
    finished = spans.get_finished_spans()
    processed = [s for s in finished if s.name.endswith(" process")]
    assert {s.name.split(" ")[0].removeprefix(aws.prefix) for s in processed} >= {
        "order-saga", "payment", "inventory", "shipping", "orders"}
    assert len({s.context.trace_id for s in processed}) == 1
    # the outcome came back from Step Functions inside the same trace
    completed = [s for s in processed if s.attributes and str(
        s.attributes["stepsaga.message_type"]).endswith("SupervisionCompleted:v1")]
    assert completed and completed[0].parent is not None


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, int]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], len(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


async def test_spans_are_exported_over_otlp_http_when_configured(
        sqlite_store: SagaStore) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        provider = otlp_tracer_provider(f"http://127.0.0.1:{server.server_port}",
                                        service_name="order-to-cash-test")
        use_tracer_provider(provider)
        app = await start_order_to_cash(sqlite_store)
        await app.submit()
        assert provider.force_flush()  # type: ignore[attr-defined]
        assert _Collector.received
        path, content_type, size = _Collector.received[0]
        assert (path, content_type) == ("/v1/traces", "application/x-protobuf") and size > 0
    finally:
        use_tracer_provider(None)
        server.shutdown()


@pytest.mark.parametrize("bad", ["127.0.0.1:4318", "ftp://collector", "http://"])
def test_a_bad_otlp_endpoint_is_refused_with_its_value(bad: str) -> None:
    with pytest.raises(ValueError, match="must be an http"):
        otlp_tracer_provider(bad)
    with pytest.raises(ValueError, match="otlp_endpoint"):
        WorkerSettings(otlp_endpoint=bad if "://" not in bad or bad.startswith("ftp")
                       else "collector:4318")
