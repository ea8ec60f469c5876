"""Transports: the broker contract, in memory (tests), Amazon SQS, and a wrapper that
adds a remote service's latency to each call (capacity models)."""

from ._base import (
    DEFAULT_MAX_MESSAGE_BYTES,
    ReceivedMessage,
    SendFailure,
    Transport,
    TransportMessage,
)
from ._latency import Latency, LatencyTransport
from ._memory import InMemoryTransport
from ._sqs import DEAD_LETTER_REASON, SqsConfig, SqsTransport, sqs_transport

__all__ = [
    "DEAD_LETTER_REASON",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "InMemoryTransport",
    "Latency",
    "LatencyTransport",
    "ReceivedMessage",
    "SendFailure",
    "SqsConfig",
    "SqsTransport",
    "Transport",
    "TransportMessage",
    "sqs_transport",
]
