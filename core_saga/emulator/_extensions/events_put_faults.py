"""Fault injection: PutEvents entries that fail, as EventBridge sometimes answers.

Not a moto gap: a test tool. EventBridge can accept a PutEvents call and still fail
some of its entries (``FailedEntryCount > 0``, an ``ErrorCode`` such as
``ThrottlingException`` or ``InternalFailure`` on those entries); publishers must re-send
only those. moto never does, so tests could not see it.

The control: a PutEvents entry with ``Source`` ``stepsaga.emulator`` and ``DetailType``
``InjectPutEventsFailures``, detail ``{"entries": N, "errorCode": "...", "bus": "..."}``,
makes the next N ordinary entries (to `bus`, or to any bus when it is left out) fail
with that code, without being routed — those that come within ``"seconds"`` (default 2)
of the control. Failures no entry met by then lapse: like EventBridge's own, they are
momentary, and do not pile up while nothing is published (a queue of them would fail a
lone publisher's every retry). The control entry itself succeeds and goes nowhere.
``Emulator.fail_put_events(n, ...)`` sends it.
"""

from __future__ import annotations

import functools
import importlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

CONTROL_SOURCE = "stepsaga.emulator"
CONTROL_DETAIL_TYPE = "InjectPutEventsFailures"

_lock = threading.Lock()
DEFAULT_SECONDS = 2.0
"""How long injected failures wait for entries to fail before they lapse."""
_pending: list[dict[str, Any]] = []
"""Failures still to inject: {"left": n, "errorCode": code, "bus": name | None,
"until": time.monotonic() deadline}."""


def _bus_name(entry: dict[str, Any]) -> str:
    bus = str(entry.get("EventBusName") or "default")
    return bus.rsplit("/", 1)[-1]


def _take_failure(entry: dict[str, Any]) -> str | None:
    with _lock:
        now = time.monotonic()
        _pending[:] = [fault for fault in _pending if fault["until"] > now]
        for fault in _pending:
            if fault["bus"] in (None, _bus_name(entry)) and fault["left"] > 0:
                fault["left"] -= 1
                code: str = fault["errorCode"]
                if fault["left"] == 0:
                    _pending.remove(fault)
                return code
    return None


def apply() -> None:
    """Wrap ``moto.events.models.EventsBackend.put_events``."""
    models = importlib.import_module("moto.events.models")
    original: Callable[..., list[dict[str, Any]]] = models.EventsBackend.put_events

    @functools.wraps(original)
    def put_events(self: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results: list[dict[str, Any] | None] = [None] * len(events)
        passed: list[tuple[int, dict[str, Any]]] = []
        for index, entry in enumerate(events):
            if (entry.get("Source") == CONTROL_SOURCE
                    and entry.get("DetailType") == CONTROL_DETAIL_TYPE):
                detail = json.loads(entry.get("Detail") or "{}")
                with _lock:
                    _pending.append({"left": int(detail.get("entries", 1)),
                                     "errorCode": str(detail.get("errorCode",
                                                                 "ThrottlingException")),
                                     "bus": detail.get("bus"),
                                     "until": time.monotonic() + float(
                                         detail.get("seconds", DEFAULT_SECONDS))})
                results[index] = {"EventId": f"control-{index}"}
                continue
            code = _take_failure(entry)
            if code is not None:
                results[index] = {"ErrorCode": code,
                                  "ErrorMessage": f"injected by the emulator: {code}"}
            else:
                passed.append((index, entry))
        if len(events) > 10:  # let moto raise its validation error as it would
            return original(self, events)
        done = original(self, [entry for _, entry in passed]) if passed else []
        for (index, _), result in zip(passed, done, strict=True):
            results[index] = result
        return [r for r in results if r is not None]

    models.EventsBackend.put_events = put_events
