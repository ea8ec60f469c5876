"""Transports: the broker contract, in memory (tests), and Amazon SQS."""

from ._base import (
    DEFAULT_MAX_MESSAGE_BYTES,
    ReceivedMessage,
    SendFailure,
    Transport,
    TransportMessage,
)
from ._memory import InMemoryTransport
from ._sqs import DEAD_LETTER_REASON, SqsConfig, SqsTransport, sqs_transport

__all__ = [
    "DEAD_LETTER_REASON",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "InMemoryTransport",
    "ReceivedMessage",
    "SendFailure",
    "SqsConfig",
    "SqsTransport",
    "Transport",
    "TransportMessage",
    "sqs_transport",
]
