"""The ``review_tasks`` table: every ReviewTask the ManualReview workflow raised, its task
token (stored, never shown) and the decision taken on it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import (
    Boolean,
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
    and_,
    or_,
    select,
    update,
)

from bridge.contracts import ReviewTask
from core_saga import Transaction
from core_saga.persistence import SagaStore, UTCDateTime, store_from_url

ReviewStatus = Literal["pending", "approved", "rejected", "expired", "superseded"]
STATUSES: tuple[ReviewStatus, ...] = ("pending", "approved", "rejected", "expired",
                                      "superseded")
DECIDING = "deciding"
"""Internal: a decision is being sent to Step Functions (a claim against double clicks)."""
CLAIM_TIMEOUT = timedelta(seconds=60)
"""A claim older than this (a console that died mid-call) may be taken again."""

REVIEW_ID_NAMESPACE = uuid.UUID("0b6f3c1e-6a55-5b7e-9d3f-2f1f8f4c9a21")

metadata = MetaData()

review_tasks = Table(
    "review_tasks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("handoff_id", String(100), nullable=False),
    Column("correlation_id", String(200), nullable=False),
    Column("saga_type", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("escalated", Boolean, nullable=False),
    Column("execution_arn", String(2048), nullable=False),
    Column("task_token", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("decided_by", String(200), nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    Column("comment", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deadline", UTCDateTime, nullable=True),
    Column("decision_reason", Text, nullable=True),
    Index("ix_review_tasks_status", "status", "created_at"),
    Index("ix_review_tasks_correlation", "correlation_id"),
    Index("ix_review_tasks_handoff", "handoff_id"),
)


def review_id(handoff_id: str, escalated: bool) -> str:
    """The id of a hand-off's first or escalated review: the same task always gets the
    same id, so a redelivered ReviewTask is stored once."""
    which = "escalated" if escalated else "first"
    return str(uuid.uuid5(REVIEW_ID_NAMESPACE, f"{handoff_id}:{which}"))


@dataclass(frozen=True, slots=True)
class Review:
    """One review as the console shows it. It has no task token, by design."""

    id: str
    handoff_id: str
    correlation_id: str
    saga_type: str
    reason: str
    payload: dict[str, Any]
    escalated: bool
    execution_arn: str
    status: str
    decided_by: str | None
    decided_at: datetime | None
    comment: str | None
    created_at: datetime
    updated_at: datetime
    deadline: datetime | None = None
    """When the workflow stops waiting for this review (None when the task did not
    say): past it the review is ``expired``."""
    decision_reason: str | None = None
    """Why it was rejected (or why it expired), apart from the reviewer's comment."""

    @property
    def pending(self) -> bool:
        return self.status in ("pending", DECIDING)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "handoffId": self.handoff_id, "correlationId": self.correlation_id,
            "sagaType": self.saga_type, "reason": self.reason, "payload": self.payload,
            "escalated": self.escalated, "executionArn": self.execution_arn,
            "status": "pending" if self.status == DECIDING else self.status,
            "decidedBy": self.decided_by,
            "decidedAt": self.decided_at.isoformat() if self.decided_at else None,
            "comment": self.comment, "createdAt": self.created_at.isoformat(),
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "decisionReason": self.decision_reason,
        }


_PUBLIC = [c for c in review_tasks.c if c.name != "task_token"]


def _review(row: Any) -> Review:
    return Review(id=row.id, handoff_id=row.handoff_id, correlation_id=row.correlation_id,
                  saga_type=row.saga_type, reason=row.reason,
                  payload=orjson.loads(row.payload), escalated=bool(row.escalated),
                  execution_arn=row.execution_arn, status=row.status,
                  decided_by=row.decided_by, decided_at=row.decided_at, comment=row.comment,
                  created_at=row.created_at, updated_at=row.updated_at, deadline=row.deadline,
                  decision_reason=row.decision_reason)


class ReviewStore:
    """Reads and writes ``review_tasks`` on the saga store's database, through its
    transactions (no connection pool of its own): a ReviewTask is recorded in the
    consumed message's transaction; decisions and reads open their own."""

    def __init__(self, store: SagaStore, *, owned: bool = False) -> None:
        self.store = store
        self._owned = owned

    @classmethod
    def open(cls, store_or_url: SagaStore | str, *, schema: str | None = None) -> ReviewStore:
        """On a saga store (the worker's: nothing new is opened), or on a database URL
        (``sqlite+aiosqlite:///…``, ``postgresql://…``): a store of its own that
        :meth:`close` closes."""
        if isinstance(store_or_url, SagaStore):
            return cls(store_or_url)
        if isinstance(store_or_url, str):
            return cls(store_from_url(store_or_url, schema=schema), owned=True)
        raise TypeError(f"the review store needs a saga store or a database URL, not a "
                        f"{type(store_or_url).__name__}")

    async def close(self) -> None:
        """Close the store if :meth:`open` made it from a URL."""
        if self._owned:
            await self.store.close()

    async def create_table(self) -> None:
        """Create ``review_tasks`` if missing (embedded use and tests; production runs
        ``stepsaga migrate``, whose ``bridge`` branch makes it)."""
        await self.store.create_tables(metadata)

    # -- writes --------------------------------------------------------------------------
    async def record(self, task: ReviewTask, now: datetime, *,
                     transaction: Transaction | None = None) -> str:
        """Store `task` (idempotent) and supersede the hand-off's first review when this
        one is escalated. Written in `transaction` (the consumed message's) when given.
        Returns the review id."""
        if transaction is not None:
            return await _record(transaction, task, now)
        async with self.store.transaction() as own:
            return await _record(own, task, now)

    async def claim(self, review: str, now: datetime) -> tuple[Review | None, str | None]:
        """Take `review` for a decision: (the review, its token) when it was pending,
        (the review, None) when it was not, (None, None) when there is no such review."""
        async with self.store.transaction() as tx:
            result = await tx.execute(
                update(review_tasks)
                .where(review_tasks.c.id == review,
                       or_(review_tasks.c.status == "pending",
                           and_(review_tasks.c.status == DECIDING,
                                review_tasks.c.updated_at < now - CLAIM_TIMEOUT)))
                .values(status=DECIDING, updated_at=now))
            row = (await tx.execute(select(review_tasks).where(
                review_tasks.c.id == review))).first()
        if row is None:
            return None, None
        return _review(row), (row.task_token if result.rowcount else None)

    async def settle(self, review: str, status: str, now: datetime, *,
                     decided_by: str | None = None, comment: str | None = None,
                     reason: str | None = None) -> None:
        """Write the outcome of a claimed review (`reason`: why it was rejected)."""
        async with self.store.transaction() as tx:
            await tx.execute(update(review_tasks).where(review_tasks.c.id == review).values(
                status=status, decided_by=decided_by, decided_at=now if status != "pending"
                else None, comment=comment, decision_reason=reason, updated_at=now))

    async def expire_overdue(self, now: datetime) -> int:
        """Mark pending reviews past their deadline ``expired`` (the workflow stopped
        waiting for them: it escalated or timed out); how many."""
        async with self.store.transaction() as tx:
            result = await tx.execute(
                update(review_tasks)
                .where(review_tasks.c.status == "pending", review_tasks.c.deadline.is_not(None),
                       review_tasks.c.deadline < now)
                .values(status="expired", decided_at=review_tasks.c.deadline, updated_at=now,
                        decision_reason="the workflow stopped waiting at its deadline"))
        return int(result.rowcount or 0)

    async def expire(self, review: str, now: datetime, why: str) -> bool:
        """Mark a pending review ``expired`` because its workflow ended (it was
        stopped, failed, or its outcome reached the saga); False if it was not
        pending."""
        async with self.store.transaction() as tx:
            result = await tx.execute(
                update(review_tasks)
                .where(review_tasks.c.id == review, review_tasks.c.status == "pending")
                .values(status="expired", decided_at=now, updated_at=now,
                        decision_reason=why[:2000]))
        return bool(result.rowcount)

    # -- reads ---------------------------------------------------------------------------
    async def get(self, review: str) -> Review | None:
        async with self.store.transaction(readonly=True) as tx:
            row = (await tx.execute(select(*_PUBLIC).where(review_tasks.c.id == review))
                   ).first()
        return None if row is None else _review(row)

    async def list_reviews(self, *, status: str | None = "pending",
                           correlation_id: str | None = None, limit: int = 100,
                           offset: int = 0) -> list[Review]:
        """Reviews, oldest first; `status` "pending" includes those being decided."""
        query = select(*_PUBLIC)
        if status == "pending":
            query = query.where(review_tasks.c.status.in_(("pending", DECIDING)))
        elif status is not None:
            query = query.where(review_tasks.c.status == status)
        if correlation_id is not None:
            query = query.where(review_tasks.c.correlation_id == correlation_id)
        query = query.order_by(review_tasks.c.created_at, review_tasks.c.id
                               ).limit(limit).offset(offset)
        async with self.store.transaction(readonly=True) as tx:
            rows = (await tx.execute(query)).all()
        return [_review(row) for row in rows]

    async def tokens_for(self, correlation_id: str) -> list[str]:
        """The task tokens of an order's reviews: for redacting them wherever they
        might show up (execution history, outbox bodies). Never display these."""
        async with self.store.transaction(readonly=True) as tx:
            found = await tx.scalars(select(review_tasks.c.task_token).where(
                review_tasks.c.correlation_id == correlation_id))
        return found.all()


async def _record(conn: Transaction, task: ReviewTask, now: datetime) -> str:
    rid = review_id(task.handoff_id, task.escalated)
    existing = (await conn.execute(select(review_tasks.c.task_token, review_tasks.c.status)
                                   .where(review_tasks.c.id == rid))).first()
    if existing is None:
        escalated_exists = not task.escalated and (await conn.execute(
            select(review_tasks.c.id).where(review_tasks.c.id == review_id(
                task.handoff_id, True)))).first() is not None
        await conn.execute(review_tasks.insert().values(
            id=rid, handoff_id=task.handoff_id, correlation_id=task.correlation_id,
            saga_type=task.saga_type, reason=task.reason,
            payload=orjson.dumps(task.payload).decode(), escalated=task.escalated,
            execution_arn=task.execution_arn, task_token=task.task_token,
            status="superseded" if escalated_exists else "pending",
            created_at=now, updated_at=now, deadline=task.deadline))
    elif existing.task_token != task.task_token and existing.status == "pending":
        # The workflow asked again for the same review (a retried task): the newest
        # token is the one it waits on.
        await conn.execute(update(review_tasks).where(review_tasks.c.id == rid).values(
            task_token=task.task_token, execution_arn=task.execution_arn, updated_at=now,
            deadline=task.deadline))
    if task.escalated:
        await conn.execute(
            update(review_tasks)
            .where(review_tasks.c.handoff_id == task.handoff_id,
                   review_tasks.c.escalated.is_(False),
                   review_tasks.c.status.in_(("pending", DECIDING)))
            .values(status="superseded", decided_at=now, updated_at=now,
                    comment="superseded by the escalated review"))
    return rid
