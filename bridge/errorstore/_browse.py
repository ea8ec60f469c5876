"""Reading the error store (``message_errors``): filters done in the database, and
whether each error was redriven (an ``audit_log`` entry of the redrive says so)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import ColumnElement, String, and_, cast, exists, func, literal, select

from bridge.audit import audit_log
from core_saga.persistence import ErrorRecord, SagaStore
from core_saga.persistence._schema import errors as message_errors

ErrorStatus = Literal["open", "redriven", "all"]
REDRIVE_ACTION = "redrive"
REDRIVEN = "redriven"
OUTBOX_PREFIX = "outbox:"
"""Errors of the outbox (a delivery refused for good) have ``outbox:KIND:DESTINATION``
as their endpoint; the others are messages a worker's endpoint could not handle."""


def error_target(error_id: int) -> str:
    """How the audit log names an error (its ``target``)."""
    return f"error:{error_id}"


@dataclass(frozen=True, slots=True)
class ErrorFilters:
    """Which errors to list; every filter given must hold."""

    endpoint: str | None = None
    """The endpoint (queue) that could not handle the message, exactly."""
    message_type: str | None = None
    """Part of the message type (``OrderPlaced`` matches ``urn:message:shop:OrderPlaced:v1``),
    case-insensitive."""
    older_than: timedelta | None = None
    """Only errors recorded longer ago than this."""
    newer_than: timedelta | None = None
    """Only errors recorded within this much time."""
    correlation_id: str | None = None
    """Only the errors of this order."""
    without_order: bool = False
    """Only the errors with no order id (messages that did not decode, …)."""
    status: ErrorStatus = "all"
    """``open``: not redriven yet; ``redriven``; ``all``."""

    def where(self, now: datetime) -> list[ColumnElement[bool]]:
        c = message_errors.c
        found: list[ColumnElement[bool]] = []
        if self.endpoint is not None:
            found.append(c.endpoint == self.endpoint)
        if self.message_type is not None:
            found.append(func.lower(c.message_type).contains(self.message_type.lower(),
                                                             autoescape=True))
        if self.older_than is not None:
            found.append(c.at < now - self.older_than)
        if self.newer_than is not None:
            found.append(c.at >= now - self.newer_than)
        if self.correlation_id is not None:
            found.append(c.correlation_id == self.correlation_id)
        if self.without_order:
            found.append(c.correlation_id.is_(None))
        if self.status != "all":
            redriven = _redriven()
            found.append(redriven if self.status == "redriven" else ~redriven)
        return found


def _redriven() -> ColumnElement[bool]:
    a = audit_log.c
    target = literal("error:", String) + cast(message_errors.c.id, String)
    return exists().where(and_(a.action == REDRIVE_ACTION, a.outcome == REDRIVEN,
                               a.target == target))


@dataclass(frozen=True, slots=True)
class Redrive:
    """When, by whom and why an error was sent back to its queue."""

    at: datetime
    actor: str
    reason: str | None
    queue: str | None


@dataclass(frozen=True, slots=True)
class ErrorItem:
    """One error of the store, and its redrive if it had one."""

    record: ErrorRecord
    redrive: Redrive | None

    @property
    def id(self) -> int:
        assert self.record.id is not None
        return self.record.id

    @property
    def redrivable(self) -> bool:
        """A message an endpoint could not handle (not an outbox delivery), not redriven."""
        return self.redrive is None and not self.record.endpoint.startswith(OUTBOX_PREFIX)

    def as_dict(self, *, body: bool = False) -> dict[str, Any]:
        r = self.record
        found: dict[str, Any] = {
            "id": r.id, "at": r.at.isoformat(), "endpoint": r.endpoint,
            "messageId": r.message_id, "messageType": r.message_type,
            "correlationId": r.correlation_id, "errorType": r.error_type, "reason": r.reason,
            "status": REDRIVEN if self.redrive else "open", "redrivable": self.redrivable,
            "redrive": None if self.redrive is None else {
                "at": self.redrive.at.isoformat(), "actor": self.redrive.actor,
                "reason": self.redrive.reason, "queue": self.redrive.queue}}
        if body:
            found["body"] = r.body
            found["headers"] = r.headers
        return found


def _record(r: Any) -> ErrorRecord:
    return ErrorRecord(r.endpoint, r.error_type, r.reason, r.body, r.at, r.message_id,
                       r.message_type, r.correlation_id,
                       orjson.loads(r.headers) if r.headers else {}, r.id)


async def _redrives(tx: Any, ids: list[int]) -> dict[int, Redrive]:
    if not ids:
        return {}
    a = audit_log.c
    rows = (await tx.execute(select(audit_log).where(
        a.action == REDRIVE_ACTION, a.outcome == REDRIVEN,
        a.target.in_([error_target(i) for i in ids])))).all()
    found: dict[int, Redrive] = {}
    for row in rows:
        detail = orjson.loads(row.detail) if row.detail else {}
        found[int(row.target.split(":", 1)[1])] = Redrive(row.at, row.actor, row.reason,
                                                         detail.get("queue"))
    return found


async def list_errors(store: SagaStore, filters: ErrorFilters, *, now: datetime,
                      limit: int = 100, offset: int = 0) -> tuple[list[ErrorItem], int]:
    """Errors matching `filters`, the newest first, and how many match in all."""
    where = filters.where(now)
    query = (select(message_errors).where(*where).order_by(message_errors.c.id.desc())
             .limit(limit).offset(offset))
    async with store.transaction(readonly=True) as tx:
        records = [_record(r) for r in (await tx.execute(query)).all()]
        total = await tx.scalar(select(func.count()).select_from(message_errors)
                                .where(*where))
        redrives = await _redrives(tx, [r.id for r in records if r.id is not None])
    return [ErrorItem(r, redrives.get(r.id or 0)) for r in records], int(total or 0)


async def get_error(store: SagaStore, error_id: int) -> ErrorItem | None:
    """One error by id, or None."""
    async with store.transaction(readonly=True) as tx:
        row = (await tx.execute(select(message_errors)
                                .where(message_errors.c.id == error_id))).first()
        if row is None:
            return None
        redrives = await _redrives(tx, [error_id])
    return ErrorItem(_record(row), redrives.get(error_id))
