"""For packages that extend the engine (the bridge is one): outbox kinds and their
sinks, the envelope's wire form, the receive pipeline and the handlers behind an
endpoint. A saga, a consumer, a worker or a test needs none of this — see
:mod:`core_saga`.

An extension adds an outbox kind (``ctx.add_raw("eventbridge", bus, body, ...)`` in a
behavior or consumer) and registers an :class:`OutboxSink` that delivers rows of that
kind (``worker.add_sink(kind, sink)``); the sink reports each row it did not simply
deliver with a :class:`DeliveryResult`.
"""

from ._context import SEND as SEND_KIND
from ._context import UNROUTED as UNROUTED_KIND
from ._context import Outgoing
from ._engine import ConsumerHandler, Endpoint, Handler, Processed, SagaHandler, Work
from ._envelope import SCHEDULE_TOKEN, TASK_TOKEN, TRACEPARENT, decode_envelope, new_id
from ._outbox import (
    DeliveryResult,
    DeliveryStatus,
    OutboxDispatcher,
    OutboxSink,
    TransportSink,
)
from ._receive import ReceiveOutcome, ReceivePipeline, RedeliveryPolicy

__all__ = [
    "SCHEDULE_TOKEN",
    "SEND_KIND",
    "TASK_TOKEN",
    "TRACEPARENT",
    "UNROUTED_KIND",
    "ConsumerHandler",
    "DeliveryResult",
    "DeliveryStatus",
    "Endpoint",
    "Handler",
    "OutboxDispatcher",
    "OutboxSink",
    "Outgoing",
    "Processed",
    "ReceiveOutcome",
    "ReceivePipeline",
    "RedeliveryPolicy",
    "SagaHandler",
    "TransportSink",
    "Work",
    "decode_envelope",
    "new_id",
]
