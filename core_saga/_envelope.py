"""The wire envelope of every message, modelled on MassTransit's JSON envelope."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from ._errors import MalformedMessageError
from ._messages import Message, MessageRegistry, registry

TRACEPARENT = "traceparent"
TASK_TOKEN = "taskToken"
SCHEDULE_TOKEN = "scheduleToken"


def new_id() -> str:
    """A new message or instance id: a random (version 4) UUID as text, from 16 bytes
    of ``os.urandom`` as :func:`uuid.uuid4` makes it, formatted without the UUID object
    (a message takes several ids: this is a third of ``str(uuid.uuid4())``'s cost)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


_VARIANT = "89ab"
"""The RFC 4122 variant (binary 10) with the nibble's two random bits."""


@dataclass(slots=True)
class Envelope:
    """A message with its addressing and tracing headers.

    ``message`` is the typed payload; ``message_type`` its URN. Everything else is
    metadata the engine reads: ids for dedupe and correlation, request/response
    addresses, and free-form ``headers`` (W3C ``traceparent`` among them).
    """

    message: Message
    message_id: str = field(default_factory=new_id)
    correlation_id: str | None = None
    conversation_id: str | None = None
    causation_id: str | None = None
    sent_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    headers: dict[str, str] = field(default_factory=dict)
    request_id: str | None = None
    response_address: str | None = None
    fault_address: str | None = None

    @property
    def message_type(self) -> str:
        return self.message.message_urn

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form, camelCase keys; optional keys are left out when empty."""
        data: dict[str, Any] = {
            "messageId": self.message_id,
            "messageType": self.message.message_urn,
            "correlationId": self.correlation_id,
            "conversationId": self.conversation_id,
            "causationId": self.causation_id,
            "sentTime": self.sent_time.isoformat(),
            "headers": self.headers,
            "message": self.message.to_wire(),
        }
        if self.request_id is not None:
            data["requestId"] = self.request_id
        if self.response_address is not None:
            data["responseAddress"] = self.response_address
        if self.fault_address is not None:
            data["faultAddress"] = self.fault_address
        return data

    def encode(self) -> bytes:
        """The envelope as JSON bytes."""
        return orjson.dumps(self.to_dict())


def _opt_str(data: dict[str, Any], key: str, message_id: str | None) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise MalformedMessageError(f"envelope field {key!r} must be a string", message_id=message_id)


def decode_envelope(body: bytes | str, *, types: MessageRegistry = registry) -> Envelope:
    """Read an envelope; MalformedMessageError, UnknownMessageTypeError or
    InvalidMessageError say what was wrong with it."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessageError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedMessageError("body is not a JSON object")
    message_id = data.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        raise MalformedMessageError("envelope has no messageId")
    urn = data.get("messageType")
    if not isinstance(urn, str) or not urn:
        raise MalformedMessageError("envelope has no messageType", message_id=message_id)
    if "message" not in data:
        raise MalformedMessageError("envelope has no message", message_id=message_id)
    headers = data.get("headers") or {}
    if not isinstance(headers, dict):
        raise MalformedMessageError("envelope headers must be an object", message_id=message_id)
    sent = data.get("sentTime")
    try:
        sent_time = datetime.fromisoformat(sent) if isinstance(sent, str) else datetime.now(UTC)
    except ValueError as exc:
        raise MalformedMessageError(f"sentTime {sent!r} is not ISO-8601",
                                    message_id=message_id) from exc
    if sent_time.tzinfo is None:
        sent_time = sent_time.replace(tzinfo=UTC)
    message = types.parse(urn, data["message"], message_id=message_id)
    return Envelope(
        message=message,
        message_id=message_id,
        correlation_id=_opt_str(data, "correlationId", message_id),
        conversation_id=_opt_str(data, "conversationId", message_id),
        causation_id=_opt_str(data, "causationId", message_id),
        sent_time=sent_time,
        headers={str(k): str(v) for k, v in headers.items()},
        request_id=_opt_str(data, "requestId", message_id),
        response_address=_opt_str(data, "responseAddress", message_id),
        fault_address=_opt_str(data, "faultAddress", message_id),
    )
