"""The transport contract: what the worker and the outbox need from a message broker."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
"""SQS takes 1 MiB per message since January 2026 (it was 256 KiB before)."""


@dataclass(frozen=True, slots=True)
class TransportMessage:
    """One message to put on a queue."""

    body: bytes
    message_id: str
    message_type: str
    correlation_id: str | None = None
    traceparent: str | None = None
    delay_seconds: int = 0


@dataclass(slots=True)
class ReceivedMessage:
    """One message taken from a queue, invisible to others until deleted or released."""

    body: bytes
    handle: Any
    """Whatever the transport needs to delete or release it (an SQS receipt handle)."""
    receive_count: int
    transport_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    received_ns: tuple[int, int] | None = None
    """When the receive call that brought it started and ended (epoch ns; tracing's
    ``receive`` span), if the receiver noted it."""
    sent_ns: int | None = None
    """When the broker took it from its sender (SQS ``SentTimestamp``, epoch ns), if known."""
    batch_size: int = 1
    """How many messages that receive call brought."""
    trace_context: Any = None
    """The context of its ``process`` span, for the ``settle`` span of its deletion."""
    failures: int = 0
    """Its handler's failures counted so far at this endpoint (set when one fails)."""


@dataclass(frozen=True, slots=True)
class SendFailure:
    """A message a batch send could not put on the queue."""

    message_id: str
    reason: str
    permanent: bool = False


class Transport(Protocol):
    """A queue broker: Amazon SQS in production, in memory in tests."""

    max_message_bytes: int

    async def send_batch(self, queue: str, messages: Sequence[TransportMessage]
                         ) -> list[SendFailure]:
        """Put up to 10 messages on `queue`; the failures (empty when all went)."""
        ...

    async def receive(self, queue: str, *, max_messages: int = 10,
                      wait_seconds: float = 20.0) -> list[ReceivedMessage]:
        """Take up to `max_messages`, waiting up to `wait_seconds` for the first."""
        ...

    async def delete_batch(self, queue: str, messages: Sequence[ReceivedMessage]) -> None:
        """Remove handled messages."""
        ...

    async def change_visibility(self, queue: str, message: ReceivedMessage,
                                timeout_seconds: int) -> None:
        """Keep a message hidden longer (slow handler), or release it after a delay
        (redelivery with backoff)."""
        ...

    async def dead_letter(self, queue: str, message: ReceivedMessage, reason: str) -> None:
        """Move a message to the queue's dead-letter queue, with the reason."""
        ...

    async def redrive_limit(self, queue: str) -> int | None:
        """How many receives the broker allows before it moves a message to the
        dead-letter queue by itself (SQS ``maxReceiveCount``); None if it never does."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
