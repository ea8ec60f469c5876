"""Typed errors. Each names what was wrong and where: saga, state, event, message id."""

from __future__ import annotations


class StepsagaError(Exception):
    """Base class of every error stepsaga raises on purpose."""


class SagaDefinitionError(StepsagaError):
    """A saga class is not a valid state machine; raised when the class is built."""

    def __init__(self, saga: str, problem: str, *, state: str | None = None,
                 event: str | None = None) -> None:
        where = f"saga {saga!r}"
        if state is not None:
            where += f", state {state!r}"
        if event is not None:
            where += f", event {event!r}"
        super().__init__(f"{where}: {problem}")
        self.saga = saga
        self.state = state
        self.event = event
        self.problem = problem


class MessageError(StepsagaError):
    """A message could not be read. It is never retried: it goes to the error store."""

    def __init__(self, reason: str, *, message_id: str | None = None) -> None:
        super().__init__(reason if message_id is None else f"message {message_id}: {reason}")
        self.reason = reason
        self.message_id = message_id


class MalformedMessageError(MessageError):
    """The body is not a JSON envelope."""


class UnknownMessageTypeError(MessageError):
    """The envelope names a message type that no registered class has."""


class InvalidMessageError(MessageError):
    """The payload does not validate against its message type."""


class OversizeMessageError(MessageError):
    """A received body is over the endpoint's size limit: it is not even decoded."""


class MessageTooLargeError(StepsagaError):
    """An outgoing message is over the configured size limit."""

    def __init__(self, destination: str, size: int, limit: int, message_type: str) -> None:
        super().__init__(
            f"{message_type} to {destination!r} is {size} bytes, over the limit of {limit} bytes"
        )
        self.destination = destination
        self.size = size
        self.limit = limit


class SagaFault(StepsagaError):
    """A saga could not handle an event; the message goes to fault handling."""

    def __init__(self, saga: str, problem: str, *, state: str | None = None,
                 event: str | None = None, message_id: str | None = None,
                 correlation_id: str | None = None) -> None:
        parts = [f"saga {saga!r}"]
        if correlation_id is not None:
            parts.append(f"instance {correlation_id!r}")
        if state is not None:
            parts.append(f"state {state!r}")
        if event is not None:
            parts.append(f"event {event!r}")
        if message_id is not None:
            parts.append(f"message {message_id}")
        super().__init__(", ".join(parts) + f": {problem}")
        self.saga = saga
        self.state = state
        self.event = event
        self.message_id = message_id
        self.correlation_id = correlation_id


class UnhandledEventError(SagaFault):
    """An event arrived in a state that has no behavior for it."""


class SagaNotFoundError(SagaFault):
    """An event found no instance and its missing-instance policy is to fault."""


class ConcurrencyError(StepsagaError):
    """Another writer changed the instance first (optimistic concurrency)."""


class MessageClaimedError(StepsagaError):
    """A message's inbox claim, made with its writes at the end (the asyncpg store's
    one-statement path, see :meth:`~core_saga.persistence.SagaStore.message_transaction`),
    found the message claimed by another delivery of it: nothing of this delivery was
    written. The endpoint reports the message as a duplicate."""


class ReceiptExpiredError(StepsagaError):
    """The transport no longer accepts a received message's receipt (its visibility
    timeout ended, or it was received again). Nothing is lost: the message is delivered
    again, and the inbox absorbs what was already applied."""


class NotRespondableError(StepsagaError):
    """Kept for compatibility; no longer raised: ``respond`` to a message without a
    response address publishes the response, as MassTransit does."""
