"""Transports: the broker contract, in memory (tests), and Amazon SQS."""

from ._base import (
    DEFAULT_MAX_MESSAGE_BYTES,
    ReceivedMessage,
    SendFailure,
    Transport,
    TransportMessage,
)
from ._memory import InMemoryTransport

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "InMemoryTransport",
    "ReceivedMessage",
    "SendFailure",
    "Transport",
    "TransportMessage",
]
