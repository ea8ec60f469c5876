"""stepsaga's saga engine: MassTransit-style state machines with durable state,
a transactional outbox and inbox, and durable timers.

Declare a saga::

    from core_saga import Event, Message, Saga, SagaState, State

    class OrderSaga(Saga[OrderState]):
        payment_pending = State()
        order_submitted = Event(OrderSubmitted, correlate_by=lambda m: m.order_id)

        def define(self) -> None:
            self.initially(
                self.when(self.order_submitted).transition_to(self.payment_pending))
"""

from ._activities import Activity
from ._binder import EventActivityBinder
from ._checks import Finding, check_model
from ._clock import Clock, SystemClock, VirtualClock
from ._consumer import Consumer
from ._context import BehaviorContext, ConsumeContext, Outgoing
from ._engine import ConsumerHandler, Endpoint, Processed, SagaHandler
from ._envelope import SCHEDULE_TOKEN, TASK_TOKEN, TRACEPARENT, Envelope, decode_envelope, new_id
from ._errors import (
    ConcurrencyError,
    InvalidMessageError,
    MalformedMessageError,
    MessageError,
    MessageTooLargeError,
    NotRespondableError,
    OversizeMessageError,
    ReceiptExpiredError,
    SagaDefinitionError,
    SagaFault,
    SagaNotFoundError,
    StepsagaError,
    UnhandledEventError,
    UnknownMessageTypeError,
)
from ._events import Event, MissingInstance, Query, Request, Schedule
from ._graph import to_dot, to_mermaid
from ._messages import Fault, Message, MessageRegistry, RequestTimeoutExpired, registry
from ._model import Concurrency, SagaModel, Unhandled
from ._outbox import (
    DONE_WITH_NOTE,
    SEND_KIND,
    UNROUTED_KIND,
    OutboxDispatcher,
    OutboxSink,
    TransportSink,
)
from ._receive import Outcome, ReceivePipeline, RedeliveryPolicy
from ._retry import RetryPolicy
from ._saga import Saga
from ._settings import WorkerSettings
from ._states import FINAL, INITIAL, SagaState, State
from ._topology import Topology
from ._worker import Worker

__all__ = [
    "DONE_WITH_NOTE",
    # Defining sagas
    "FINAL",
    "INITIAL",
    "SCHEDULE_TOKEN",
    "SEND_KIND",
    "TASK_TOKEN",
    "TRACEPARENT",
    "UNROUTED_KIND",
    "Activity",
    "BehaviorContext",
    # Running
    "Clock",
    "Concurrency",
    # Errors
    "ConcurrencyError",
    "ConsumeContext",
    # Messages
    "Consumer",
    "ConsumerHandler",
    "Endpoint",
    "Envelope",
    "Event",
    "EventActivityBinder",
    "Fault",
    # Model, checks, graphs
    "Finding",
    "InvalidMessageError",
    "MalformedMessageError",
    "Message",
    "MessageError",
    "MessageRegistry",
    "MessageTooLargeError",
    "MissingInstance",
    "NotRespondableError",
    "OutboxDispatcher",
    "OutboxSink",
    "Outcome",
    "Outgoing",
    "OversizeMessageError",
    "Processed",
    "Query",
    "ReceiptExpiredError",
    "ReceivePipeline",
    "RedeliveryPolicy",
    "Request",
    "RequestTimeoutExpired",
    "RetryPolicy",
    "Saga",
    "SagaDefinitionError",
    "SagaFault",
    "SagaHandler",
    "SagaModel",
    "SagaNotFoundError",
    "SagaState",
    "Schedule",
    "State",
    "StepsagaError",
    "SystemClock",
    "Topology",
    "TransportSink",
    "Unhandled",
    "UnhandledEventError",
    "UnknownMessageTypeError",
    "VirtualClock",
    "Worker",
    "WorkerSettings",
    "check_model",
    "decode_envelope",
    "new_id",
    "registry",
    "to_dot",
    "to_mermaid",
]
