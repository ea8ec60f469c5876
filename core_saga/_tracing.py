"""OpenTelemetry for the engine: spans for consume, handle, transition, send and publish,
and the W3C trace context carried in every envelope's ``traceparent`` header.

Tracing is off until a tracer provider is set, either the global one
(``opentelemetry.trace.set_tracer_provider``, or :func:`configure_tracing` with an OTLP
endpoint) or this module's own (:func:`use_tracer_provider`, for tests). While it is
off, no span is made and envelopes carry the incoming ``traceparent`` on unchanged.

The span model (OpenTelemetry messaging conventions):

- ``<queue> process`` (CONSUMER) for each message a receive endpoint handles, a child
  of the context in the message's ``traceparent`` (a malformed one starts a new trace);
- ``handle <saga or consumer>`` (INTERNAL) for each handler that runs;
- ``transition <from> -> <to>`` (INTERNAL) when a saga instance changes state;
- ``<destination> send`` / ``<message type> publish`` (PRODUCER) when a behavior writes a
  message to the outbox. Its context goes into the envelope, so the receiver's
  ``process`` span is its child, and the trace goes on across queues, EventBridge
  (``SupervisionRequested.traceparent``), Step Functions (copied into its replies) and
  back, even though the outbox sends after the commit.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
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


def consume_span(endpoint: str, envelope: Envelope) -> contextlib.AbstractContextManager[None]:
    """The CONSUMER span of one message on `endpoint` (nothing while tracing is off)."""
    found = tracer()
    return _OFF if found is None else _consume(found, endpoint, envelope)


@contextlib.contextmanager
def _consume(found: Tracer, endpoint: str, envelope: Envelope) -> Iterator[None]:
    with found.start_as_current_span(
            f"{endpoint} process", context=_parent(envelope.headers), kind=SpanKind.CONSUMER,
            attributes={"messaging.system": "aws_sqs", "messaging.operation.type": "process",
                        "messaging.destination.name": endpoint,
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
    """A PRODUCER span for a message written to the outbox (``send`` or ``publish``);
    its context goes into the envelope's ``traceparent``."""
    found = tracer()
    if found is None:
        return
    with found.start_as_current_span(
            f"{destination} {operation}", kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "aws_sqs", "messaging.operation.type": operation,
                        "messaging.destination.name": destination,
                        "messaging.message.id": envelope.message_id,
                        "stepsaga.message_type": envelope.message_type,
                        "stepsaga.correlation_id": envelope.correlation_id or ""}):
        carrier: dict[str, str] = {}
        _propagator.inject(carrier)
        if TRACEPARENT in carrier:
            envelope.headers[TRACEPARENT] = carrier[TRACEPARENT]


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
