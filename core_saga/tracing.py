"""OpenTelemetry for stepsaga (see docs/observability.md).

- :func:`configure_tracing` — export spans over OTLP/HTTP (``OTEL_EXPORTER_OTLP_ENDPOINT``
  or ``STEPSAGA_OTLP_ENDPOINT``); the ``stepsaga worker`` command calls it (through
  :func:`core_saga.telemetry.configure`).
- :func:`use_tracer_provider` — trace with a provider of your own (tests: an in-memory
  exporter) without touching the global one.
- :func:`current_traceparent` — the W3C ``traceparent`` of the current span.
- :func:`instrument_asgi` — a SERVER span for each request to a FastAPI app (the order
  API's ``POST /orders`` is the root of the order's trace).

For extensions (the bridge's sinks): :func:`start_span` / :func:`end_span` for a span
parented to a ``traceparent`` kept on an outbox row, :func:`traceparent_of` a span,
:func:`context_of` a ``traceparent``, :func:`producer_span` for a message written to the
outbox by code of one's own, and :func:`tracer` (None while tracing is off).
"""

from ._tracing import (
    configure_tracing,
    context_of,
    current_traceparent,
    end_span,
    instrument_asgi,
    otlp_tracer_provider,
    producer_span,
    short_type,
    start_span,
    traceparent_of,
    tracer,
    use_tracer_provider,
)

__all__ = ["configure_tracing", "context_of", "current_traceparent", "end_span",
           "instrument_asgi",
           "otlp_tracer_provider", "producer_span", "short_type", "start_span",
           "traceparent_of", "tracer", "use_tracer_provider"]
