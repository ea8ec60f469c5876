"""Log lines an operator can search and join to traces (see docs/observability.md).

:func:`configure_logging` sets up the root logger from ``STEPSAGA_LOG_FORMAT``:

- ``text`` (the default): one line per record; the fields below are appended as
  ``key=value``;
- ``json``: one JSON object per line (python-json-logger), with ``timestamp``,
  ``level``, ``logger``, ``message`` and the fields below.

Every line carries, where known: ``trace_id`` and ``span_id`` (the current
OpenTelemetry span, as the collector shows them), ``endpoint``, ``message_id``,
``message_type``, ``correlation_id`` and ``saga`` (set by the engine around each message
it handles). Values coming from messages are customer data: in text lines, line breaks
and other control characters are escaped (``\\n``), so a field cannot forge a line;
JSON escapes them by itself. ``stepsaga worker``, ``stepsaga demo``, ``stepsaga
console`` and ``python -m examples.order_to_cash`` call it; call it in your own entry
points.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import IO, Any

from opentelemetry import trace

from ._log_context import FIELDS, current

LOG_FORMAT_ENV = "STEPSAGA_LOG_FORMAT"
FORMATS = ("text", "json")

CONTEXT_FIELDS = ("trace_id", "span_id", *FIELDS)
"""The fields a line carries when they are known."""

_CONTROL = {c: f"\\x{c:02x}" for c in range(32)} | {10: "\\n", 13: "\\r", 9: "\\t", 127: "\\x7f"}
_CONTROL.update({0x2028: "\\u2028", 0x2029: "\\u2029", 0x85: "\\x85"})


def escape(value: str) -> str:
    """`value` with line breaks and control characters written as escapes."""
    return value.translate(_CONTROL)


class ContextFilter(logging.Filter):
    """Puts the trace ids and the engine's message fields on each record (as
    attributes named in :data:`CONTEXT_FIELDS`, None when unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            record.trace_id = f"{span.trace_id:032x}"
            record.span_id = f"{span.span_id:016x}"
        else:
            record.trace_id = record.span_id = None
        fields = current()
        for name in FIELDS:
            setattr(record, name, fields.get(name))
        return True


class TextFormatter(logging.Formatter):
    """``time level logger message key=value…``; the message and the values escaped so
    that one record is one line (a traceback follows on its own lines)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        line = super().formatMessage(record)
        extra = [f"{name}={escape(str(value))}" for name in CONTEXT_FIELDS
                 if (value := getattr(record, name, None)) is not None]
        return line + (" " + " ".join(extra) if extra else "")


def json_formatter() -> logging.Formatter:
    """The JSON formatter (python-json-logger, from the ``otel`` extra)."""
    try:
        from pythonjsonlogger.json import JsonFormatter
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise ValueError(f"{LOG_FORMAT_ENV}=json needs python-json-logger: install "
                         "stepsaga[otel]") from exc

    class _Formatter(JsonFormatter):
        def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord,
                       message_dict: dict[str, Any]) -> None:
            super().add_fields(log_data, record, message_dict)
            for name in CONTEXT_FIELDS:
                if log_data.get(name) is None:
                    log_data.pop(name, None)

    return _Formatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s " + " ".join(
            f"%({name})s" for name in CONTEXT_FIELDS),
        rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z")


def log_format(value: str | None = None) -> str:
    """`value`, else ``STEPSAGA_LOG_FORMAT``, else ``text``; ValueError for anything
    but ``text`` or ``json``."""
    chosen = (value if value is not None else os.environ.get(LOG_FORMAT_ENV, "")).strip()
    chosen = chosen.lower() or "text"
    if chosen not in FORMATS:
        raise ValueError(f"{LOG_FORMAT_ENV}={chosen!r}: use 'text' or 'json'")
    return chosen


def formatted(handler: logging.Handler, *, format: str | None = None) -> logging.Handler:
    """`handler` with the context fields and the formatter of `format` (default:
    ``STEPSAGA_LOG_FORMAT``, else ``text``); ValueError for an unknown format."""
    chosen = log_format(format)
    handler.addFilter(ContextFilter())
    handler.setFormatter(json_formatter() if chosen == "json" else TextFormatter())
    return handler


def configure_logging(level: str | int = "INFO", *, format: str | None = None,
                      stream: IO[str] | None = None) -> logging.Handler:
    """Log to `stream` (stderr) at `level` in `format` (default: ``STEPSAGA_LOG_FORMAT``,
    else ``text``), replacing the root logger's handlers. ValueError for an unknown
    format or level. The handler made is returned."""
    log_format(format)  # refused before anything changes
    if isinstance(level, str):
        name = level.strip().upper()
        if not isinstance(logging.getLevelName(name), int):
            raise ValueError(f"log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
        level = name
    handler = formatted(logging.StreamHandler(stream if stream is not None else sys.stderr),
                        format=format)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


__all__ = ["CONTEXT_FIELDS", "ContextFilter", "TextFormatter", "configure_logging", "escape",
           "formatted", "json_formatter", "log_format"]
