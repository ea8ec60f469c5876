"""OpenTelemetry for the engine: a span for each step of a message's life, and the W3C
trace context carried in every envelope's ``traceparent`` header.

Tracing is off until a tracer provider is set, either the global one
(``opentelemetry.trace.set_tracer_provider``, or :func:`configure_tracing` with an OTLP
endpoint) or this module's own (:func:`use_tracer_provider`, for tests). While it is
off, no span is made and envelopes carry the incoming ``traceparent`` on unchanged.

The span model follows the OpenTelemetry messaging conventions (``messaging.operation.type``
``create``, ``send``, ``receive``, ``process``, ``settle``):

- ``<destination> create`` (PRODUCER) when a behavior, consumer or service writes a
  message to the outbox (``messaging.operation.name`` ``send`` or ``publish``). Its
  context goes into the envelope: every later span of that message is its child, though
  the outbox sends after the commit;
- ``<queue> send`` (CLIENT) when the outbox dispatcher puts it on the queue
  (``SendMessageBatch``, one span per message, the batch's size as
  ``messaging.batch.message_count``); ``timer <message type>`` (INTERNAL) from a timer's
  due time to its sending;
- ``<queue> receive`` (CONSUMER) for the ``ReceiveMessage`` call that brought it;
- ``<queue> process`` (CONSUMER) for its handling (one transaction), with
  ``handle <saga or consumer>`` and ``transition <from> -> <to>`` (INTERNAL) inside;
- ``<queue> settle`` (CLIENT) for its deletion after the commit.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from ._envelope import Envelope

TRACEPARENT = "traceparent"
INSTRUMENTATION = "stepsaga"

_propagator = TraceContextTextMapPropagator()
_override: TracerProvider | None = None


def use_tracer_provider(provider: TracerProvider | None) -> None:
    """Trace with `provider` instead of the global one (None: back to the global)."""
    global _override
    _override = provider


_PROVIDER_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
"""OpenTelemetry loads a provider named in the environment on first use."""
_OFF_PROVIDERS = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
_tracers: dict[int, Tracer] = {}


def tracer() -> Tracer | None:
    """The engine's tracer, or None while tracing is off."""
    if _override is not None:
        provider: TracerProvider = _override
    elif getattr(trace, "_TRACER_PROVIDER", True) is None and not _PROVIDER_FROM_ENV:
        # No global provider set (the common case, read cheaply: get_tracer_provider()
        # looks at the environment on every call, a microsecond per message and hook).
        return None
    else:
        provider = trace.get_tracer_provider()
    if isinstance(provider, _OFF_PROVIDERS):
        return None
    found = _tracers.get(id(provider))
    if found is None:
        found = _tracers[id(provider)] = provider.get_tracer(INSTRUMENTATION)
    return found


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, or None (tracing off, no span).
    The bridge puts it in ``SupervisionRequested.traceparent``."""
    if tracer() is None:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def _parent(headers: dict[str, str]) -> Any:
    value = headers.get(TRACEPARENT)
    if not value:
        return None
    # The propagator ignores a malformed header (the span starts a new trace).
    return _propagator.extract({TRACEPARENT: value})


_OFF: contextlib.nullcontext[None] = contextlib.nullcontext()


def context_of(traceparent: str | None) -> Any:
    """The OpenTelemetry context of a W3C `traceparent` (None when absent; a malformed
    one gives a context without a span: a new trace)."""
    return _propagator.extract({TRACEPARENT: traceparent}) if traceparent else None


def traceparent_of(span: Any) -> str | None:
    """The W3C ``traceparent`` of `span` (None for a span that records nothing)."""
    context = span.get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def start_span(name: str, *, traceparent: str | None = None, parent: Any = None,
               kind: SpanKind = SpanKind.INTERNAL, attributes: dict[str, Any] | None = None,
               start_time: int | None = None) -> Any:
    """A started span (not made current), the child of `parent` (a context) or of
    `traceparent`; None while tracing is off. End it with ``span.end()``."""
    found = tracer()
    if found is None:
        return None
    context = parent if parent is not None else context_of(traceparent)
    return found.start_span(name, context=context, kind=kind, attributes=attributes,
                            start_time=start_time)


def end_span(span: Any, error: str | None = None, end_time: int | None = None) -> None:
    """End `span` (when there is one), its status ERROR with `error` when given."""
    if span is None:
        return
    if error:
        span.set_status(Status(StatusCode.ERROR, error))
    span.end(end_time=end_time)


def envelope_traceparent(body: bytes) -> str | None:
    """The ``traceparent`` header of an encoded envelope, without decoding its message."""
    if b"traceparent" not in body:
        return None
    import orjson

    try:
        headers = orjson.loads(body).get("headers") or {}
    except (ValueError, AttributeError):
        return None
    value = headers.get(TRACEPARENT) if isinstance(headers, dict) else None
    return value if isinstance(value, str) else None


def receive_span(queue: str, physical: str, envelope: Envelope, *, started_ns: int,
                 ended_ns: int, batch: int) -> None:
    """The CONSUMER span of the ``ReceiveMessage`` call that brought `envelope` (one per
    message, the child of its creation context, the batch's size on it)."""
    if tracer() is None:
        return
    span = start_span(
        f"{queue} receive", traceparent=envelope.headers.get(TRACEPARENT),
        kind=SpanKind.CONSUMER, start_time=started_ns, attributes={
            "messaging.system": "aws_sqs", "messaging.operation.type": "receive",
            "messaging.operation.name": "ReceiveMessage",
            "messaging.destination.name": physical, "stepsaga.queue": queue,
            "messaging.batch.message_count": batch,
            "messaging.message.id": envelope.message_id,
            "stepsaga.message_type": envelope.message_type})
    end_span(span, end_time=ended_ns)


def physical_name(transport: Any, queue: str) -> str:
    """The broker's name of `queue` (the SQS queue prefix added), for span attributes."""
    name = getattr(transport, "physical_name", None)
    return str(name(queue)) if callable(name) else queue


def settle_spans(queue: str, physical: str, messages: Any) -> list[Any]:
    """Started CLIENT ``settle`` spans for the deletion of handled `messages` (those whose
    ``process`` span was recorded)."""
    if tracer() is None:
        return []
    spans = []
    for message in messages:
        if message.trace_context is None:
            continue
        spans.append(start_span(
            f"{queue} settle", parent=message.trace_context, kind=SpanKind.CLIENT,
            attributes={"messaging.system": "aws_sqs", "messaging.operation.type": "settle",
                        "messaging.operation.name": "DeleteMessageBatch",
                        "messaging.destination.name": physical, "stepsaga.queue": queue,
                        "messaging.batch.message_count": len(messages)}))
    return spans


def send_spans(queue: str, physical: str, rows: Any) -> list[Any]:
    """Started CLIENT ``send`` spans, one per outbox row put on `queue` in one batch, each
    the child of its row's ``create`` span (the envelope's ``traceparent``)."""
    if tracer() is None:
        return []
    # A row written while tracing was off has no trace to join: no span for it.
    return [start_span(
        f"{queue} send", traceparent=parent, kind=SpanKind.CLIENT,
        attributes={"messaging.system": "aws_sqs", "messaging.operation.type": "send",
                    "messaging.operation.name": "SendMessageBatch",
                    "messaging.destination.name": physical, "stepsaga.queue": queue,
                    "messaging.batch.message_count": len(rows),
                    "messaging.message.id": row.message_id,
                    "stepsaga.message_type": row.message_type})
        if (parent := envelope_traceparent(row.body)) else None for row in rows]


def short_type(urn: str) -> str:
    """``urn:message:shop:OrderSubmitted:v1`` → ``OrderSubmitted``."""
    parts = urn.split(":")
    if len(parts) >= 2 and parts[-1].startswith("v") and parts[-1][1:].isdigit():
        return parts[-2]
    return parts[-1]


def timer_span(row: Any, traceparent: str | None, sent_at: datetime) -> None:
    """A span from a timer's due time to `sent_at` (both on the engine's clock), the
    child of the context that scheduled it."""
    if tracer() is None or row.created_at is None or not traceparent:
        return
    due_ns = int(row.deliver_at.timestamp() * 1e9)
    span = start_span(f"timer {short_type(row.message_type)}",
                      traceparent=traceparent, start_time=due_ns, attributes={
                          "stepsaga.message_type": row.message_type,
                          "stepsaga.timer.due": row.deliver_at.isoformat(),
                          "messaging.message.id": row.message_id,
                          "stepsaga.correlation_id": row.correlation_id or ""})
    end_span(span, end_time=max(due_ns, int(sent_at.timestamp() * 1e9)))


def process_context() -> Any:
    """The current context, when a span records in it (the ``process`` span, for the
    message's ``settle`` span later); else None."""
    if tracer() is None or not trace.get_current_span().get_span_context().is_valid:
        return None
    from opentelemetry import context

    return context.get_current()


def consume_span(endpoint: str, envelope: Envelope, physical: str | None = None
                 ) -> contextlib.AbstractContextManager[None]:
    """The CONSUMER span of one message on `endpoint` (`physical`: the queue's name at
    the broker; nothing while tracing is off)."""
    found = tracer()
    return _OFF if found is None else _consume(found, endpoint, envelope, physical or endpoint)


@contextlib.contextmanager
def _consume(found: Tracer, endpoint: str, envelope: Envelope, physical: str
             ) -> Iterator[None]:
    with found.start_as_current_span(
            f"{endpoint} process", context=_parent(envelope.headers), kind=SpanKind.CONSUMER,
            attributes={"messaging.system": "aws_sqs", "messaging.operation.type": "process",
                        "messaging.operation.name": "process",
                        "messaging.destination.name": physical, "stepsaga.queue": endpoint,
                        "messaging.message.id": envelope.message_id,
                        "messaging.message.conversation_id":
                            envelope.conversation_id or envelope.message_id,
                        "stepsaga.message_type": envelope.message_type,
                        "stepsaga.correlation_id": envelope.correlation_id or ""}) as span:
        try:
            yield
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise


def handle_span(handler: str, envelope: Envelope) -> contextlib.AbstractContextManager[None]:
    """The span of one handler (saga or consumer) handling the current message."""
    found = tracer()
    return _OFF if found is None else _handle(found, handler, envelope)


@contextlib.contextmanager
def _handle(found: Tracer, handler: str, envelope: Envelope) -> Iterator[None]:
    with found.start_as_current_span(f"handle {handler}", attributes={
            "stepsaga.handler": handler, "stepsaga.message_type": envelope.message_type}):
        yield


def transition_span(saga: str, correlation_id: str, event: str, source: str,
                    target: str) -> None:
    """Record a state change of a saga instance (a span with no duration)."""
    found = tracer()
    if found is None:
        return
    with found.start_as_current_span(f"transition {source} -> {target}", attributes={
            "stepsaga.saga_type": saga, "stepsaga.correlation_id": correlation_id,
            "stepsaga.event": event, "stepsaga.state.from": source,
            "stepsaga.state.to": target}):
        pass


def producer_span(operation: str, destination: str, envelope: Envelope) -> None:
    """The PRODUCER (``create``) span of a message written to the outbox (`operation`
    ``send`` or ``publish``); its context goes into the envelope's ``traceparent``."""
    found = tracer()
    if found is None:
        return
    with found.start_as_current_span(
            f"{short_type(destination) if operation == 'publish' else destination} create",
            kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "aws_sqs", "messaging.operation.type": "create",
                        "messaging.operation.name": operation,
                        "messaging.destination.name": destination,
                        "messaging.message.id": envelope.message_id,
                        "stepsaga.message_type": envelope.message_type,
                        "stepsaga.correlation_id": envelope.correlation_id or ""}):
        carrier: dict[str, str] = {}
        _propagator.inject(carrier)
        if TRACEPARENT in carrier:
            envelope.headers[TRACEPARENT] = carrier[TRACEPARENT]


def instrument_asgi(app: Any) -> bool:
    """Give every request to the FastAPI `app` a SERVER span (OpenTelemetry's FastAPI
    instrumentation): an order's trace starts at the HTTP request that submitted it, and
    an incoming ``traceparent`` header is continued. False when the instrumentation is
    not installed (the ``otel`` extra)."""
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError:
        return False
    # the ASGI send/receive events as spans of their own would only clutter the trace
    FastAPIInstrumentor.instrument_app(app, tracer_provider=_override,
                                       exclude_spans=["receive", "send"])
    return True


def otlp_tracer_provider(endpoint: str, *, service_name: str | None = None
                         ) -> TracerProvider:
    """An SDK tracer provider exporting over OTLP/HTTP to `endpoint` (``/v1/traces`` is
    added unless given), in batches. ValueError when `endpoint` is not an http(s) URL."""
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"OTLP endpoint {endpoint!r} must be an http(s) URL, "
                         "e.g. http://127.0.0.1:4318")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    url = endpoint if parsed.path.rstrip("/").endswith("/v1/traces") \
        else endpoint.rstrip("/") + "/v1/traces"
    name = service_name or os.environ.get("OTEL_SERVICE_NAME") or "stepsaga"
    provider = SdkTracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    return provider


def configure_tracing(*, endpoint: str | None = None, service_name: str | None = None
                      ) -> TracerProvider | None:
    """Export spans over OTLP/HTTP when an endpoint is configured: `endpoint`, else
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT``. Sets the
    global tracer provider and returns it; None (tracing stays off) without an endpoint.
    A malformed endpoint raises ValueError naming it."""
    endpoint = (endpoint or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    if not endpoint:
        return None
    provider = otlp_tracer_provider(endpoint, service_name=service_name)
    trace.set_tracer_provider(provider)
    return provider
