"""Sending errors of the error store back to their queue, once each, audited.

A redriven message keeps its message id: if it was handled after all (or is redriven
from the dead-letter queue too), the consumer's inbox absorbs the duplicate. The claim,
the send and the audit entry share one database transaction: when the send fails
nothing is recorded, and the error stays open to be redriven again."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from sqlalchemy import select

from bridge.audit import AuditEntry, AuditLog
from core_saga import ConcurrencyError
from core_saga.persistence import SagaStore
from core_saga.persistence._schema import errors as message_errors
from core_saga.transports import TransportMessage

from ._browse import (
    OUTBOX_PREFIX,
    REDRIVE_ACTION,
    REDRIVEN,
    ErrorFilters,
    ErrorItem,
    error_target,
    get_error,
)

log = logging.getLogger("bridge.errorstore")

RedriveOutcome = Literal["redriven", "unchanged", "not_found", "not_redrivable", "failed"]
CLAIM_SCOPE = "stepsaga.error-redrive"
MAX_BATCH = 10_000
"""The most errors one ``redrive_matching`` sends back."""


class QueueSender(Protocol):
    """Puts one message on an endpoint's queue (by its logical name)."""

    async def send(self, queue: str, message: TransportMessage) -> None:
        """Send `message`; raise when the queue did not take it."""
        ...


class SendRefused(Exception):
    """The queue did not take the message (the reason says why)."""


class TransportSender:
    """A :class:`QueueSender` on a transport (an :class:`~core_saga.transports.SqsTransport`
    with the workers' queue prefix)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    async def send(self, queue: str, message: TransportMessage) -> None:
        failures = await self.transport.send_batch(queue, [message])
        if failures:
            raise SendRefused(failures[0].reason)


@dataclass(frozen=True, slots=True)
class RedriveResult:
    """What came of redriving one error."""

    error_id: int
    outcome: RedriveOutcome
    changed: bool
    message: str
    queue: str | None = None
    correlation_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"errorId": self.error_id, "result": self.outcome, "changed": self.changed,
                "message": self.message, "queue": self.queue,
                "correlationId": self.correlation_id}


@dataclass(slots=True)
class BatchResult:
    """What came of redriving every open error matching some filters."""

    matched: int = 0
    results: list[RedriveResult] = field(default_factory=list)
    stopped: str | None = None
    """Why it stopped before the end (a send failed), if it did."""

    def count(self, outcome: RedriveOutcome) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def message(self) -> str:
        text = (f"{self.count('redriven')} of {self.matched} matching errors redriven")
        skipped = self.count("not_redrivable") + self.count("unchanged")
        if skipped:
            text += f", {skipped} skipped (outbox deliveries or redriven meanwhile)"
        if self.stopped:
            text += f"; stopped: {self.stopped}; the rest are unchanged"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"matched": self.matched, "redriven": self.count("redriven"),
                "failed": self.count("failed"), "message": self.message,
                "results": [r.as_dict() for r in self.results]}


class _Claimed(Exception):
    """Someone redrove the error while this redrive was under way."""


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


class ErrorRedriver:
    """Redrives errors: one by id, or every open one matching filters."""

    def __init__(self, store: SagaStore, audit: AuditLog, sender: QueueSender, *,
                 now: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self.audit = audit
        self.sender = sender
        self.now = now or (lambda: datetime.now(UTC))

    async def redrive(self, error_id: int, *, actor: str, reason: str | None = None
                      ) -> RedriveResult:
        """Send error `error_id`'s message back to its endpoint's queue, once. An unknown
        id, an error redriven before and an outbox delivery change nothing; a failed
        send leaves the error open. Every attempt on a known error is audited."""
        item = await get_error(self.store, error_id)
        if item is None:
            return RedriveResult(error_id, "not_found", False, f"no error {error_id}")
        record = item.record
        if item.redrive is not None:
            return await self._audited(item, actor, reason, RedriveResult(
                error_id, "unchanged", False,
                f"error {error_id} was redriven already, by {item.redrive.actor} at "
                f"{item.redrive.at:%Y-%m-%d %H:%M:%S} UTC: nothing changed",
                item.redrive.queue, record.correlation_id))
        if record.endpoint.startswith(OUTBOX_PREFIX):
            return RedriveResult(
                error_id, "not_redrivable", False,
                f"error {error_id} is an outbox delivery the destination refused "
                f"({record.endpoint}), not a message of a queue: nothing changed",
                None, record.correlation_id)
        queue = record.endpoint
        message = TransportMessage(
            body=record.body.encode(), message_id=record.message_id or f"error-{error_id}",
            message_type=record.message_type or "unknown",
            correlation_id=record.correlation_id,
            traceparent=record.headers.get("traceparent"))
        sent = False
        try:
            # The send inside the transaction: if it fails, the claim is rolled back.
            async with self.store.transaction() as tx:
                if not await tx.claim_once(CLAIM_SCOPE, error_target(error_id)):
                    raise _Claimed
                await self.sender.send(queue, message)
                sent = True
                await self.audit.record(self._entry(item, actor, reason, REDRIVEN, queue),
                                        transaction=tx)
        except _Claimed:
            return RedriveResult(error_id, "unchanged", False,
                                 f"error {error_id} was redriven already: nothing changed",
                                 queue, record.correlation_id)
        except ConcurrencyError:
            # Another redrive of this error committed its claim first, on a store whose
            # claims are checked only at the commit (the built-in ones wait instead): a
            # copy sent meanwhile keeps the message's id, so the inbox absorbs it, and
            # the other redrive is the one audited.
            log.info("redrive: error %s was redriven at the same time by another redrive",
                     error_id)
            return RedriveResult(error_id, "unchanged", False,
                                 f"error {error_id} was redriven at the same time by another "
                                 "redrive: nothing more changed (a copy sent meanwhile is "
                                 "absorbed by the inbox)", queue, record.correlation_id)
        except Exception as exc:
            what = f"{type(exc).__name__}: {_first_line(exc)}"
            if sent:
                text = (f"error {error_id}: the message went back to {queue}, but the "
                        f"database did not record it ({what}); it is still open — a "
                        "second redrive is safe (the inbox absorbs the duplicate)")
            else:
                text = (f"error {error_id} could not be sent back to {queue} ({what}): "
                        "nothing changed, the error is still open; try again when the "
                        "queue answers")
            log.warning("redrive: %s", text)
            return await self._audited(item, actor, reason, RedriveResult(
                error_id, "failed", False, text, queue, record.correlation_id),
                detail={"error": what})
        log.info("redrive: error %s sent back to %s by %s", error_id, queue, actor)
        return RedriveResult(error_id, "redriven", True,
                             f"error {error_id} sent back to {queue}", queue,
                             record.correlation_id)

    async def redrive_matching(self, filters: ErrorFilters, *, actor: str,
                               reason: str | None = None) -> BatchResult:
        """Redrive every open error matching `filters`, oldest first, each on its own
        (audited one by one); it stops at the first failed send."""
        open_only = ErrorFilters(**{**_fields(filters), "status": "open"})
        where = open_only.where(self.now())
        async with self.store.transaction(readonly=True) as tx:
            ids = [int(i) for i in (await tx.scalars(
                select(message_errors.c.id).where(*where).order_by(message_errors.c.id)
                .limit(MAX_BATCH))).all()]
        batch = BatchResult(matched=len(ids))
        for error_id in ids:
            result = await self.redrive(error_id, actor=actor, reason=reason)
            batch.results.append(result)
            if result.outcome == "failed":
                batch.stopped = result.message
                break
        return batch

    def _entry(self, item: ErrorItem, actor: str, reason: str | None, outcome: str,
               queue: str | None, **detail: Any) -> AuditEntry:
        record = item.record
        return AuditEntry(
            at=self.now(), actor=actor, action=REDRIVE_ACTION, target=error_target(item.id),
            outcome=outcome, correlation_id=record.correlation_id, reason=reason,
            detail={"queue": queue, "messageId": record.message_id,
                    "messageType": record.message_type, "endpoint": record.endpoint,
                    **detail})

    async def _audited(self, item: ErrorItem, actor: str, reason: str | None,
                       result: RedriveResult, **detail: Any) -> RedriveResult:
        """`result`, after recording it (best effort: the database may be what failed)."""
        try:
            await self.audit.record(self._entry(item, actor, reason, result.outcome,
                                                result.queue, **detail))
        except Exception as exc:
            log.warning("redrive: cannot audit error %s: %s", item.id, _first_line(exc))
        return result


def _fields(filters: ErrorFilters) -> dict[str, Any]:
    return {name: getattr(filters, name) for name in filters.__dataclass_fields__}
