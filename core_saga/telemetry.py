"""Telemetry for a stepsaga process, from the standard ``OTEL_*`` variables (see
docs/observability.md).

- :func:`configure` — traces (OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set) and metrics (Prometheus text on the
  worker's health port at ``/metrics``, and OTLP/HTTP when an endpoint is set). The
  ``stepsaga worker`` command calls it; call it in your own entry points.
- :func:`configure_tracing`, :func:`configure_metrics` — one of the two.
- :func:`prometheus_text` — the metrics collected so far, as Prometheus text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._metrics import configure_metrics, prometheus_text
from ._tracing import configure_tracing


@dataclass(frozen=True, slots=True)
class Telemetry:
    """What :func:`configure` turned on."""

    tracer_provider: Any
    """The SDK tracer provider exporting spans, or None (tracing off)."""
    metrics: bool
    """Whether metrics are collected."""

    def flush(self) -> None:
        """Export what is buffered (before the process exits)."""
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush()


def configure(*, service_name: str | None = None, otlp_endpoint: str | None = None,
              metrics: bool = True) -> Telemetry:
    """Turn on what the environment asks for: spans over OTLP/HTTP to `otlp_endpoint` or
    ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT``; metrics (a Prometheus reader for the
    worker's ``/metrics``, plus OTLP/HTTP when an endpoint is set) unless `metrics` is
    False or ``OTEL_METRICS_EXPORTER=none``. ``OTEL_SERVICE_NAME`` names the service.
    A malformed endpoint raises ValueError naming it."""
    provider = configure_tracing(endpoint=otlp_endpoint, service_name=service_name)
    collected = configure_metrics(service_name=service_name) if metrics else False
    return Telemetry(tracer_provider=provider, metrics=collected)


__all__ = ["Telemetry", "configure", "configure_metrics", "configure_tracing",
           "prometheus_text"]
