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
from ._aws import AwsConfig
from ._binder import EventActivityBinder
from ._checks import Finding, check_model
from ._clock import Clock, SystemClock, VirtualClock
from ._consumer import Consumer
from ._context import BehaviorContext, ConsumeContext
from ._envelope import Envelope
from ._errors import (
    ConcurrencyError,
    InvalidMessageError,
    MalformedMessageError,
    MessageClaimedError,
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
from ._event_loop import run_async
from ._events import CompositeEvent, Event, MissingInstance, Query, Request, Schedule
from ._graph import to_dot, to_mermaid
from ._messages import Fault, Message, MessageRegistry, RequestTimeoutExpired, registry
from ._model import Concurrency, SagaModel, Unhandled
from ._operator import (
    OPERATOR_CANCELED,
    OperatorCancel,
    handles_operator_cancel,
    operator_cancel_event,
)
from ._outbox_transaction import Outbox, OutboxTransaction
from ._retry import RetryPolicy
from ._saga import Saga
from ._settings import WorkerSettings
from ._states import FINAL, INITIAL, SagaState, State
from ._topology import Topology
from ._transaction import Result, Row, ScalarResult, StatementError, Transaction
from ._worker import Worker

# Grouped by what a user does with them; the stores are in core_saga.persistence, the
# transports in core_saga.transports, the test harness in core_saga.testing, and what
# extensions need (outbox sinks, the receive pipeline) in core_saga.extension.
__all__ = [  # noqa: RUF022
    # Defining sagas
    "Saga",
    "SagaState",
    "State",
    "INITIAL",
    "FINAL",
    "Event",
    "OPERATOR_CANCELED",
    "OperatorCancel",
    "handles_operator_cancel",
    "operator_cancel_event",
    "CompositeEvent",
    "Schedule",
    "Request",
    "Query",
    "MissingInstance",
    "Concurrency",
    "Unhandled",
    "RetryPolicy",
    "BehaviorContext",
    "EventActivityBinder",
    "Activity",
    # Messages
    "Message",
    "Envelope",
    "Fault",
    "RequestTimeoutExpired",
    "MessageRegistry",
    "registry",
    # Consumers
    "Consumer",
    "ConsumeContext",
    # Your own tables, in the message's transaction; sending from outside a handler
    "Transaction",
    "Result",
    "Row",
    "ScalarResult",
    "Outbox",
    "OutboxTransaction",
    # Running
    "Worker",
    "WorkerSettings",
    "run_async",
    "AwsConfig",
    "Topology",
    "Clock",
    "SystemClock",
    "VirtualClock",
    # The compiled model, its checks and graphs
    "SagaModel",
    "Finding",
    "check_model",
    "to_mermaid",
    "to_dot",
    # Errors
    "StepsagaError",
    "SagaDefinitionError",
    "StatementError",
    "MessageError",
    "MalformedMessageError",
    "UnknownMessageTypeError",
    "InvalidMessageError",
    "OversizeMessageError",
    "MessageTooLargeError",
    "SagaFault",
    "SagaNotFoundError",
    "UnhandledEventError",
    "NotRespondableError",
    "ConcurrencyError",
    "MessageClaimedError",
    "ReceiptExpiredError",
]
