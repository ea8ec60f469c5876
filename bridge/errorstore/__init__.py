"""The operator's side of failed messages: the error store browsed with filters, its
errors sent back to their queue (once each, audited), and an SQS dead-letter queue
moved back to its source queue.

::

    items, total = await list_errors(store, ErrorFilters(endpoint="payment"), now=now)
    redriver = ErrorRedriver(store, audit, TransportSender(sqs))
    result = await redriver.redrive(items[0].id, actor="ann", reason="bug fixed")
"""

from ._browse import (
    ErrorFilters,
    ErrorItem,
    ErrorStatus,
    Redrive,
    error_target,
    get_error,
    list_errors,
)
from ._dlq import DlqProblem, DlqResult, audit_dlq_redrive, redrive_dead_letters
from ._redrive import (
    BatchResult,
    ErrorRedriver,
    QueueSender,
    RedriveResult,
    SendRefused,
    TransportSender,
)
from ._sqs import queue_transport, sqs_client

__all__ = ["BatchResult", "DlqProblem", "DlqResult", "ErrorFilters", "ErrorItem",
           "ErrorRedriver", "ErrorStatus", "QueueSender", "Redrive", "RedriveResult",
           "SendRefused", "TransportSender", "audit_dlq_redrive", "error_target",
           "get_error", "list_errors", "queue_transport", "redrive_dead_letters",
           "sqs_client"]
