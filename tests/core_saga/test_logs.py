"""Log lines an operator can search: JSON by setting, every line with the trace and the
message it belongs to, customer data unable to forge a line."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core_saga.logs import configure_logging, escape, log_format
from core_saga.persistence import SagaStore
from core_saga.tracing import use_tracer_provider
from examples.order_to_cash import OrderSaga
from tests.order_to_cash.support import order_request, start_order_to_cash

from .log_app import FORGED

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


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


def test_a_line_break_in_customer_data_cannot_forge_a_text_line(root_logging: None) -> None:
    out = io.StringIO()
    configure_logging("INFO", format="text", stream=out)
    logging.getLogger("t").info("customer %s", FORGED)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith('customer fine\\n{"level": "ERROR", "message": "forged"}')
    assert escape("a\r\nb\x1b[31m\u2028") == "a\\r\\nb\\x1b[31m\\u2028"


def test_json_lines_carry_the_trace_and_the_message(
        root_logging: None, spans: InMemorySpanExporter, sqlite_store: SagaStore) -> None:
    import asyncio

    out = io.StringIO()
    configure_logging("INFO", format="json", stream=out)

    async def run() -> str:
        app = await start_order_to_cash(sqlite_store)
        order_id = await app.submit(order_request(risk_flags=("new_account",)))
        await app.h.assert_state(OrderSaga, order_id, OrderSaga.awaiting_review)
        return order_id

    order_id = asyncio.run(run())
    lines = [json.loads(line) for line in out.getvalue().splitlines()]  # every line is JSON
    (handed,) = [line for line in lines if "handed off to ManualReview" in line["message"]]
    assert handed["level"] == "INFO" and handed["logger"] == "bridge.hand_off"
    assert handed["saga"] == "OrderSaga" and handed["correlation_id"] == order_id
    assert handed["endpoint"] == "order-saga"
    assert handed["message_type"].endswith("OrderSubmitted:v1")
    (process,) = [s for s in spans.get_finished_spans() if s.name == "order-saga process"
                  and s.attributes and s.attributes["messaging.message.id"]
                  == handed["message_id"]]
    assert handed["trace_id"] == f"{process.context.trace_id:032x}"
    assert handed["span_id"] in {f"{s.context.span_id:016x}" for s in spans.get_finished_spans()}
    assert "timestamp" in handed


def test_an_unknown_format_is_refused_naming_the_setting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPSAGA_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="STEPSAGA_LOG_FORMAT='xml'"):
        log_format()
    monkeypatch.setenv("STEPSAGA_LOG_FORMAT", "JSON")
    assert log_format() == "json"
    with pytest.raises(ValueError, match="log level"):
        configure_logging("LOUD", format="text")


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _worker(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "core_saga.cli", "worker", "tests.core_saga.log_app:build"],
        env={**os.environ, "PYTHONPATH": str(ROOT), "STEPSAGA_WAIT_TIME_SECONDS": "0",
             "STEPSAGA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'logs.db'}", **env},
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.timeout(120)
def test_stepsaga_worker_writes_json_lines_with_trace_ids(tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proc = _worker(tmp_path, {"STEPSAGA_LOG_FORMAT": "json",
                              "OTEL_EXPORTER_OTLP_ENDPOINT":
                                  f"http://127.0.0.1:{server.server_port}"})
    try:
        assert proc.stderr is not None
        lines: list[dict[str, str]] = []
        deadline = time.monotonic() + 60
        while not any("note:" in line["message"] for line in lines):
            assert time.monotonic() < deadline, f"no note logged: {lines}"
            raw = proc.stderr.readline()
            assert raw, f"the worker exited: {proc.wait()} {lines}"
            lines.append(json.loads(raw))  # every line is one JSON object
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=60)[1].decode().splitlines()
        lines += [json.loads(line) for line in rest if line.strip()]
    finally:
        if proc.poll() is None:
            proc.kill()
        server.shutdown()
    assert proc.returncode == 0
    (note,) = [line for line in lines if line["message"].startswith("note:")]
    assert note["message"] == f"note: {FORGED}"  # the data intact, inside one JSON string
    assert note["correlation_id"] == "c-7" and note["endpoint"] == "notes"
    assert len(note["trace_id"]) == 32 and len(note["span_id"]) == 16
    assert any(line["message"].startswith("worker started") for line in lines)
    assert "/v1/traces" in _Collector.received  # the spans went to the collector


def test_stepsaga_worker_refuses_an_unknown_log_format(tmp_path: Path) -> None:
    proc = _worker(tmp_path, {"STEPSAGA_LOG_FORMAT": "xml"})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "STEPSAGA_LOG_FORMAT='xml'" in err.decode()
