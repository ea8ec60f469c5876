"""An operator's cancel, as a message a saga opts into handling.

The ops console and ``stepsaga orders cancel`` send :class:`OperatorCancel` to the saga's
queue (through the transport, with a fresh message id: the inbox absorbs a duplicate
delivery). A saga that supports it declares the event and handles it in every state
that is not final — undo what was done, end canceled with :data:`OPERATOR_CANCELED`::

    class OrderSaga(Saga[OrderState]):
        operator_cancel = operator_cancel_event()

        def define(self) -> None:
            ...
            self.during(self.payment_pending,
                        self.when(self.operator_cancel).then(...).send(PAYMENT, refund)
                        .transition_to(self.compensating_payment))

A saga without the event is told apart by :func:`handles_operator_cancel`: the action
refuses it with a message saying so, rather than sending a message nobody handles.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ._events import Event, MissingInstance
from ._messages import Message

OPERATOR_CANCELED = "operator_canceled"
"""The cancel reason of an order an operator canceled."""


class OperatorCancel(Message):
    """An operator asks the saga instance `correlation_id` to cancel: `actor` and
    `reason` are who and why (as in the audit log)."""

    message_namespace = "stepsaga"

    correlation_id: str = Field(min_length=1, max_length=200)
    actor: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2000)


def operator_cancel_event() -> Event[OperatorCancel]:
    """The event a saga declares to accept an operator's cancel (correlated by the
    message's ``correlation_id``; on an instance that is gone it is dropped)."""
    return Event(OperatorCancel, on_missing=MissingInstance.DISCARD)


def handles_operator_cancel(model: Any) -> bool:
    """Whether the saga `model` (a :class:`~core_saga.SagaModel`) declares an event for
    :class:`OperatorCancel`."""
    return any(event.message_type is OperatorCancel for event in model.events.values())
