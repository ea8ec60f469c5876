"""OpenTelemetry for stepsaga (see docs/observability.md).

- :func:`configure_tracing` — export spans over OTLP/HTTP (``OTEL_EXPORTER_OTLP_ENDPOINT``
  or ``STEPSAGA_OTLP_ENDPOINT``); the ``stepsaga worker`` command calls it.
- :func:`use_tracer_provider` — trace with a provider of your own (tests: an in-memory
  exporter) without touching the global one.
- :func:`current_traceparent` — the W3C ``traceparent`` of the current span.
"""

from ._tracing import (
    configure_tracing,
    current_traceparent,
    otlp_tracer_provider,
    use_tracer_provider,
)

__all__ = ["configure_tracing", "current_traceparent", "otlp_tracer_provider",
           "use_tracer_provider"]
