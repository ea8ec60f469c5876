"""The engine's metrics, on the OpenTelemetry metrics API.

Instruments are made once, at import, from the API's meter: until a meter provider is
set they are no-ops (a method call each, nothing recorded), so the engine pays nothing
for metrics nobody reads. :func:`configure_metrics` sets a provider from the standard
``OTEL_*`` variables; the worker serves what it collected as Prometheus text on its
health port (``/metrics``).

Names follow the OpenTelemetry semantic conventions for messaging where they have one
(``messaging.client.consumed.messages``, ``messaging.process.duration``,
``messaging.client.sent.messages``); the rest are ``stepsaga.*``. docs/observability.md
lists them with their attributes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

MESSAGING_SYSTEM = "aws_sqs"

_meter = metrics.get_meter("stepsaga")


@dataclass(frozen=True, slots=True)
class Instrument:
    """One of the engine's instruments, as docs/observability.md lists it."""

    name: str
    kind: str
    """``counter``, ``histogram`` or ``gauge``."""
    unit: str
    description: str
    attributes: tuple[str, ...]


INSTRUMENTS: list[Instrument] = []
"""Every instrument the engine and the bridge make (a test checks the docs against it)."""

_ENDPOINT = ("messaging.system", "messaging.destination.name", "stepsaga.message_type")


def _declare(name: str, kind: str, unit: str, description: str,
             attributes: tuple[str, ...]) -> None:
    INSTRUMENTS.append(Instrument(name, kind, unit, description, attributes))


def counter(name: str, *, unit: str, description: str,
            attributes: tuple[str, ...]) -> metrics.Counter:
    """A counter on the stepsaga meter, listed in :data:`INSTRUMENTS`."""
    _declare(name, "counter", unit, description, attributes)
    return _meter.create_counter(name, unit=unit, description=description)


def histogram(name: str, *, unit: str, description: str,
              attributes: tuple[str, ...]) -> metrics.Histogram:
    """A histogram on the stepsaga meter, listed in :data:`INSTRUMENTS`."""
    _declare(name, "histogram", unit, description, attributes)
    return _meter.create_histogram(name, unit=unit, description=description)


def gauge(name: str, callback: Callable[[CallbackOptions], Iterable[Observation]], *,
          unit: str, description: str, attributes: tuple[str, ...] = ()) -> None:
    """An observable gauge on the stepsaga meter, listed in :data:`INSTRUMENTS`."""
    _declare(name, "gauge", unit, description, attributes)
    _meter.create_observable_gauge(name, callbacks=[callback], unit=unit,
                                   description=description)


consumed = counter(
    "messaging.client.consumed.messages", unit="{message}",
    description="Messages received from a queue by a worker.",
    attributes=("messaging.system", "messaging.destination.name"))
process_duration = histogram(
    "messaging.process.duration", unit="s",
    description="How long handling one message took (its transaction included).",
    attributes=_ENDPOINT)
handled = counter(
    "stepsaga.messages.handled", unit="{message}",
    description="Messages handled, by outcome: ack, retry (failed, comes back), dead, "
                "conflict, outage.",
    attributes=(*_ENDPOINT, "stepsaga.outcome"))
dead_lettered = counter(
    "stepsaga.messages.dead_lettered", unit="{message}",
    description="Messages moved to the dead-letter queue, their reason in the error store.",
    attributes=_ENDPOINT)
conflicts = counter(
    "stepsaga.transaction.conflicts", unit="{conflict}",
    description="Optimistic-concurrency conflicts; each runs the message again.",
    attributes=("messaging.destination.name",))
retries = counter(
    "stepsaga.handler.retries", unit="{retry}",
    description="Retry blocks (``retry(...)``) that failed and wait before their next "
                "attempt.",
    attributes=("messaging.destination.name", "stepsaga.message_type"))
batch_fallbacks = counter(
    "stepsaga.transaction.batch_fallbacks", unit="{batch}",
    description="Batched commits rolled back as a whole; their messages were then "
                "handled one by one.",
    attributes=("messaging.system", "messaging.destination.name"))
batch_size = histogram(
    "stepsaga.transaction.batch_size", unit="{message}",
    description="Messages committed together in one batched transaction.",
    attributes=("messaging.system", "messaging.destination.name"))
sent = counter(
    "messaging.client.sent.messages", unit="{message}",
    description="Outbox rows delivered, by sink kind and destination.",
    attributes=("messaging.destination.name", "stepsaga.outbox.kind"))
delivery_failures = counter(
    "stepsaga.outbox.delivery_failures", unit="{row}",
    description="Outbox rows a sink did not deliver: retry (passing) or permanent.",
    attributes=("stepsaga.outbox.kind", "stepsaga.delivery"))
timer_lag = histogram(
    "stepsaga.timer.lag", unit="s",
    description="How late a timer (a scheduled message) was sent after it came due.",
    attributes=("stepsaga.message_type",))
aws_calls = counter(
    "stepsaga.aws.calls", unit="{call}",
    description="AWS API calls made, by service and operation (SQS, EventBridge, Step "
                "Functions).",
    attributes=("rpc.service", "rpc.method"))


class _Gauges:
    """Values read from the store now and then (a background task refreshes them), for
    the observable gauges: their callbacks are synchronous and must not touch the
    database."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.outbox: dict[str, float] = {}
        self.sagas: dict[tuple[str, str], int] = {}
        self.database_up: dict[str, int] = {}

    def set_outbox(self, values: Mapping[str, float]) -> None:
        with self._lock:
            self.outbox = dict(values)

    def set_sagas(self, counts: Mapping[tuple[str, str], int]) -> None:
        with self._lock:
            self.sagas = dict(counts)

    def set_database_up(self, worker: str, up: bool) -> None:
        with self._lock:
            self.database_up[worker] = int(up)

    def _outbox(self, name: str) -> Iterable[Observation]:
        with self._lock:
            value = self.outbox.get(name)
        return [] if value is None else [Observation(value)]

    def outbox_backlog(self, _options: CallbackOptions) -> Iterable[Observation]:
        return self._outbox("backlog")

    def outbox_oldest_age(self, _options: CallbackOptions) -> Iterable[Observation]:
        return self._outbox("oldest_age")

    def timers_due(self, _options: CallbackOptions) -> Iterable[Observation]:
        return self._outbox("timers_due")

    def saga_states(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            items = list(self.sagas.items())
        return [Observation(count, {"stepsaga.saga_type": saga, "stepsaga.state": state})
                for (saga, state), count in items]

    def database(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            items = list(self.database_up.items())
        return [Observation(up, {"stepsaga.worker": worker}) for worker, up in items]


gauges = _Gauges()
"""What the observable gauges report (the worker keeps it current)."""

gauge("stepsaga.outbox.backlog", gauges.outbox_backlog, unit="{row}",
      description="Outbox rows due and not sent yet (timers that came due included).")
gauge("stepsaga.outbox.oldest_age", gauges.outbox_oldest_age, unit="s",
      description="How long the oldest due, unsent outbox row has been waiting.")
gauge("stepsaga.timers.due", gauges.timers_due, unit="{timer}",
      description="Timers whose time has come and that are not sent yet.")
gauge("stepsaga.sagas", gauges.saga_states, unit="{instance}",
      description="Saga instances, by saga type and state.",
      attributes=("stepsaga.saga_type", "stepsaga.state"))
gauge("stepsaga.database.up", gauges.database, unit="1",
      description="1 while the worker's database takes writes, 0 during an outage.",
      attributes=("stepsaga.worker",))

def endpoint_attributes(queue: str, message_type: str | None = None) -> dict[str, Any]:
    """The attributes of a message's measurements at a receive endpoint (`queue`: its
    name at the broker, the SQS prefix included)."""
    attributes: dict[str, Any] = {"messaging.system": MESSAGING_SYSTEM,
                                  "messaging.destination.name": queue}
    if message_type is not None:
        attributes["stepsaga.message_type"] = message_type
    return attributes


_prometheus_reader: Any = None
_configured = False


def configure_metrics(*, service_name: str | None = None, prometheus: bool = True) -> bool:
    """Collect the engine's metrics: a meter provider with a Prometheus reader (served
    by the worker at ``/metrics``) when `prometheus`, and an OTLP/HTTP exporter when
    ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.
    ``OTEL_METRICS_EXPORTER=none`` turns it off. Sets the global meter provider; False
    (metrics stay off) when the ``otel`` extra is not installed or nothing is wanted."""
    global _prometheus_reader, _configured
    if _configured:
        return True  # a process has one meter provider
    if os.environ.get("OTEL_METRICS_EXPORTER", "").strip().lower() == "none":
        return False
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.resources import Resource
    except ImportError:
        return False
    readers: list[Any] = []
    if prometheus:
        try:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader
        except ImportError:
            pass
        else:
            if _prometheus_reader is None:
                _prometheus_reader = PrometheusMetricReader()
            readers.append(_prometheus_reader)
    endpoint = (os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
                or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        url = endpoint if endpoint.rstrip("/").endswith("/v1/metrics") \
            else endpoint.rstrip("/") + "/v1/metrics"
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=url)))
    if not readers:
        return False
    name = service_name or os.environ.get("OTEL_SERVICE_NAME") or "stepsaga"
    metrics.set_meter_provider(MeterProvider(
        resource=Resource.create({"service.name": name}), metric_readers=readers))
    _configured = True
    return True


def enabled() -> bool:
    """Whether :func:`configure_metrics` set a provider (the worker then refreshes the
    gauges it reads from the database)."""
    return _configured


def prometheus_text() -> bytes | None:
    """The metrics collected so far in the Prometheus text format, or None when
    :func:`configure_metrics` set no Prometheus reader."""
    if _prometheus_reader is None:
        return None
    from prometheus_client import REGISTRY, generate_latest

    return bytes(generate_latest(REGISTRY))
