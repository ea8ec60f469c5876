"""The bridge's spans and counters against the emulator: a PutEvents span per entry,
the child of the hand-off's context, whose own context the event carries on (detail and
X-Ray header); hand-offs counted started or lost; task answers counted, a gone task as
such."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from bridge import AwsClients, EventBridgeSink, StepFunctionsSink
from bridge._telemetry import traceparent_from_xray, xray_header, xray_trace_id
from core_saga import AwsConfig
from core_saga.emulator import Emulator
from core_saga.emulator.pytest_plugin import AwsScope
from core_saga.extension import DeliveryStatus
from core_saga.persistence import OutboxRow
from core_saga.telemetry import configure, prometheus_text
from core_saga.tracing import current_traceparent, tracer, use_tracer_provider

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


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


def counted(name: str, **labels: str) -> float:
    text = (prometheus_text() or b"").decode()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def _row(i: int, entry: dict[str, Any], message_type: str) -> OutboxRow:
    now = datetime.now(UTC)
    return OutboxRow(id=i, message_id=f"h-{i}", kind="eventbridge", destination="bus",
                     message_type=message_type, correlation_id=f"order-{i}",
                     body=orjson.dumps(entry), created_at=now, deliver_at=now)


def test_the_x_ray_header_is_the_same_trace() -> None:
    header = xray_header(TRACEPARENT)
    assert header == "Root=1-0af76519-16cd43dd8448eb211c80319c;Parent=b7ad6b7169203331;Sampled=1"
    assert traceparent_from_xray(header) == TRACEPARENT
    assert xray_trace_id(TRACEPARENT) == "1-0af76519-16cd43dd8448eb211c80319c"
    assert xray_header(None) is None and traceparent_from_xray("Root=garbage") is None


@pytest.mark.emulator
async def test_a_hand_off_s_put_events_span_carries_the_trace_on_to_the_workflow(
        spans: InMemorySpanExporter, emulator: Emulator, aws: AwsScope) -> None:
    assert configure(service_name="bridge-telemetry-test").metrics
    bus = aws.name("bus")
    aws.create_bus("bus")
    queue = aws.create_queue("seen", dlq=False)
    events = aws.client("events")
    events.put_rule(Name=aws.name("r"), EventBusName=bus,
                    EventPattern=json.dumps({"source": ["stepsaga.Test"]}))
    events.put_targets(Rule=aws.name("r"), EventBusName=bus,
                       Targets=[{"Id": "q", "Arn": queue.arn}])
    found = tracer()
    assert found is not None
    with found.start_as_current_span("hand off"):
        parent = current_traceparent()
        header = xray_header(parent)
    detail = {"workflow": "ManualReview", "handoffId": "h-1", "traceparent": parent}
    entry = {"Source": "stepsaga.Test", "DetailType": "SupervisionRequested",
             "EventBusName": bus, "Detail": json.dumps(detail), "TraceHeader": header}
    started = counted("stepsaga_handoffs_started_total", stepsaga_workflow="ManualReview")
    lost = counted("stepsaga_handoffs_lost_total", stepsaga_workflow="ManualReview")
    config = AwsConfig(endpoint_url=emulator.endpoint_url, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    async with AwsClients(config) as clients:
        sink = EventBridgeSink(await clients.client("events"))
        assert await sink.deliver(bus, [_row(1, entry, "eventbridge:SupervisionRequested")]
                                  ) == {}
        missing = {**entry, "EventBusName": aws.name("no-such-bus")}
        failed = await sink.deliver(bus, [_row(2, missing, "eventbridge:SupervisionRequested")])
    assert failed[2].status is DeliveryStatus.PERMANENT
    assert counted("stepsaga_handoffs_started_total",
                   stepsaga_workflow="ManualReview") == started + 1
    assert counted("stepsaga_handoffs_lost_total", stepsaga_workflow="ManualReview",
                   stepsaga_reason="not_delivered") == lost + 1
    (hand_off,) = [s for s in spans.get_finished_spans() if s.name == "hand off"]
    put, refused = [s for s in spans.get_finished_spans() if s.name.endswith(" send")]
    assert put.kind is SpanKind.CLIENT and put.attributes is not None
    assert put.parent is not None and put.parent.span_id == hand_off.context.span_id
    assert put.attributes["stepsaga.workflow"] == "ManualReview"
    assert put.attributes["messaging.operation.name"] == "PutEvents"
    assert refused.status.status_code.name == "ERROR"
    # the event on the bus carries the PutEvents span's context, not the hand-off's
    body = aws.client("sqs").receive_message(QueueUrl=queue.url, WaitTimeSeconds=2)
    (message,) = body["Messages"]
    carried = json.loads(message["Body"])["detail"]["traceparent"]
    assert carried.split("-")[2] == f"{put.context.span_id:016x}"
    assert carried.split("-")[1] == f"{hand_off.context.trace_id:032x}"


@pytest.mark.emulator
async def test_task_answers_are_counted_and_a_gone_task_is_named(
        spans: InMemorySpanExporter, emulator: Emulator) -> None:
    assert configure(service_name="bridge-telemetry-test").metrics
    gone = counted("stepsaga_task_answers_failures_total", rpc_method="SendTaskSuccess",
                   stepsaga_delivery="gone")
    now = datetime.now(UTC)
    body = {"action": "SendTaskSuccess", "taskToken": "no-such-token", "output": "{}",
            "traceparent": TRACEPARENT,
            "handoff": {"workflow": "ManualReview", "handoffId": "h-9", "first": True}}
    row = OutboxRow(id=9, message_id="a-9", kind="sfn-task", destination="stepfunctions",
                    message_type="stepfunctions:SendTaskSuccess", correlation_id="order-9",
                    body=orjson.dumps(body), created_at=now, deliver_at=now)
    config = AwsConfig(endpoint_url=emulator.endpoint_url, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    async with AwsClients(config) as clients:
        sink = StepFunctionsSink(await clients.client("stepfunctions"))
        result = await sink.deliver("stepfunctions", [row])
    assert result[9].status is DeliveryStatus.SETTLED
    assert counted("stepsaga_task_answers_failures_total", rpc_method="SendTaskSuccess",
                   stepsaga_delivery="gone") == gone + 1
    (answer,) = spans.get_finished_spans()
    assert answer.name == "ManualReview SendTaskSuccess" and answer.attributes is not None
    assert answer.parent is not None and f"{answer.parent.span_id:016x}" == "b7ad6b7169203331"
    assert answer.attributes["stepsaga.delivery"] == "gone"
    assert answer.attributes["messaging.operation.type"] == "settle"
