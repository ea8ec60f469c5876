"""What the engine is working on, for log lines: the endpoint, message, correlation id
and saga of the message being handled (context variables set around each message and
saga handler; every log line written meanwhile carries them — see :mod:`core_saga.logs`).

Setting them is one ``ContextVar.set`` each, on the hot path; the fields are read from
the envelope only when a line is written.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._envelope import Envelope

FIELDS = ("endpoint", "message_id", "message_type", "correlation_id", "saga")
"""The fields kept here, in the order log lines show them."""

_message: ContextVar[tuple[str, Envelope] | None] = ContextVar("stepsaga_log_message",
                                                                default=None)
_saga: ContextVar[str | None] = ContextVar("stepsaga_log_saga", default=None)


def current() -> dict[str, str]:
    """The fields known now (empty outside message handling)."""
    fields: dict[str, str] = {}
    found = _message.get()
    if found is not None:
        endpoint, envelope = found
        fields["endpoint"] = endpoint
        fields["message_id"] = envelope.message_id
        fields["message_type"] = envelope.message_type
        if envelope.correlation_id:
            fields["correlation_id"] = envelope.correlation_id
    saga = _saga.get()
    if saga is not None:
        fields["saga"] = saga
    return fields


def enter_message(endpoint: str, envelope: Envelope) -> Token[tuple[str, Envelope] | None]:
    """Lines written from now on belong to `envelope` on `endpoint` (until
    :func:`exit_message` with the token returned)."""
    return _message.set((endpoint, envelope))


def exit_message(token: Token[tuple[str, Envelope] | None]) -> None:
    _message.reset(token)


def enter_saga(name: str) -> Token[str | None]:
    """Lines written from now on come from the saga `name` (until :func:`exit_saga`)."""
    return _saga.set(name)


def exit_saga(token: Token[str | None]) -> None:
    _saga.reset(token)
