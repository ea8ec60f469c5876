"""What the engine is working on, for log lines: the endpoint, message, correlation id
and saga of the message being handled (context variables, set around each message and
handler; every log line written meanwhile carries them — see :mod:`core_saga.logs`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

FIELDS = ("endpoint", "message_id", "message_type", "correlation_id", "saga")
"""The fields kept here, in the order log lines show them."""

_current: ContextVar[dict[str, str] | None] = ContextVar("stepsaga_log_context", default=None)


def current() -> dict[str, str]:
    """The fields known now (empty outside message handling)."""
    return _current.get() or {}


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add `fields` (those not None) to every log line written inside the block."""
    known = {k: v for k, v in fields.items() if v is not None}
    if not known:
        yield
        return
    token = _current.set({**current(), **known})
    try:
        yield
    finally:
        _current.reset(token)
