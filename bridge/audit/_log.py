"""The ``audit_log`` table: who did what to which order, when, why, and what came of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
)

from core_saga import Transaction
from core_saga.persistence import SagaStore, UTCDateTime, store_from_url

metadata = MetaData()

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
           autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(50), nullable=False),
    Column("target", String(200), nullable=False),
    Column("correlation_id", String(200), nullable=True),
    Column("outcome", String(50), nullable=False),
    Column("reason", Text, nullable=True),
    Column("comment", Text, nullable=True),
    Column("detail", Text, nullable=True),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_correlation", "correlation_id"),
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One action a person took: `actor` is their name (never a role or a token)."""

    at: datetime
    actor: str
    action: str
    """``approve``, ``reject``, …"""
    target: str
    """What it was taken on (a review id, …)."""
    outcome: str
    """What came of it: ``approved``, ``unchanged``, ``expired``, ``failed``, …"""
    correlation_id: str | None = None
    reason: str | None = None
    comment: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "actor": self.actor,
                "action": self.action, "target": self.target,
                "correlationId": self.correlation_id, "outcome": self.outcome,
                "reason": self.reason, "comment": self.comment, "detail": self.detail}


class AuditLog:
    """Appends to and reads ``audit_log`` on the saga store's database, through its
    transactions (no connection pool of its own): an entry can be written in the same
    transaction as what it records (`transaction=`)."""

    def __init__(self, store: SagaStore, *, owned: bool = False) -> None:
        self.store = store
        self._owned = owned

    @classmethod
    def open(cls, store_or_url: SagaStore | str, *, schema: str | None = None) -> AuditLog:
        """On a saga store, or on a database URL (a store of its own, closed by
        :meth:`close`)."""
        if isinstance(store_or_url, SagaStore):
            return cls(store_or_url)
        return cls(store_from_url(store_or_url, schema=schema), owned=True)

    async def close(self) -> None:
        if self._owned:
            await self.store.close()

    async def create_table(self) -> None:
        """Create ``audit_log`` if missing (production runs ``stepsaga migrate``)."""
        await self.store.create_tables(metadata)

    async def record(self, entry: AuditEntry, *, transaction: Transaction | None = None
                     ) -> None:
        """Append `entry`: in `transaction` when given (with what it records), else in
        a transaction of its own."""
        statement = audit_log.insert().values(
            at=entry.at, actor=entry.actor, action=entry.action, target=entry.target,
            correlation_id=entry.correlation_id, outcome=entry.outcome,
            reason=entry.reason, comment=entry.comment,
            detail=orjson.dumps(entry.detail).decode() if entry.detail else None)
        if transaction is not None:
            await transaction.execute(statement)
            return
        async with self.store.transaction() as tx:
            await tx.execute(statement)

    async def entries(self, *, correlation_id: str | None = None, actor: str | None = None,
                      limit: int = 100, offset: int = 0) -> tuple[list[AuditEntry], int]:
        """Entries, the newest first, and how many match in all."""
        where = []
        if correlation_id is not None:
            where.append(audit_log.c.correlation_id == correlation_id)
        if actor is not None:
            where.append(audit_log.c.actor == actor)
        query = (select(audit_log).where(*where).order_by(audit_log.c.id.desc())
                 .limit(limit).offset(offset))
        async with self.store.transaction(readonly=True) as tx:
            rows = (await tx.execute(query)).all()
            total = await tx.scalar(select(func.count()).select_from(audit_log).where(*where))
        return [AuditEntry(at=r.at, actor=r.actor, action=r.action, target=r.target,
                           outcome=r.outcome, correlation_id=r.correlation_id,
                           reason=r.reason, comment=r.comment,
                           detail=orjson.loads(r.detail) if r.detail else {}, id=r.id)
                for r in rows], int(total or 0)
