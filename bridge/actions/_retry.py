"""Retry a hand-off that never started its workflow: its EventBridge entry put on the bus
again, with the same hand-off id (the deterministic id makes a second start harmless)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from sqlalchemy import insert, select, update

from bridge._handoffs import handoffs_of
from bridge._publisher import EVENTBRIDGE
from bridge.audit import AuditEntry, AuditLog
from core_saga import Transaction
from core_saga.persistence import SagaStore
from core_saga.persistence._schema import outbox

from ._result import ActionResult
from ._resume import order_status


async def republish(tx: Transaction, handoff_id: str, order_id: str, at: datetime) -> bool:
    """Put the hand-off's EventBridge entry on the bus again, through the outbox (the
    workers' :class:`~bridge.EventBridgeSink` sends it): its row due now if still unsent,
    else a copy of it. False when the order's outbox has no entry for `handoff_id`."""
    rows = list((await tx.execute(
        select(outbox).where(outbox.c.correlation_id == order_id,
                             outbox.c.kind == EVENTBRIDGE,
                             outbox.c.message_id == handoff_id)
        .order_by(outbox.c.id.desc()))).mappings())
    if not rows:
        return False
    row = rows[0]
    if row["dispatched_at"] is None:
        await tx.execute(update(outbox).where(outbox.c.id == row["id"]).values(
            deliver_at=at, failed=False, attempts=0, locked_until=None))
        return True
    await tx.execute(insert(outbox).values(
        message_id=row["message_id"], kind=row["kind"], destination=row["destination"],
        message_type=row["message_type"], correlation_id=row["correlation_id"],
        body=row["body"], created_at=at, deliver_at=at))
    return True


async def retry_handoff(store: SagaStore, audit: AuditLog, order_id: str, *, actor: str,
                        reason: str, terminal_states: Collection[str] = (),
                        now: datetime | None = None) -> ActionResult:
    """Re-publish the order's hand-offs that have no outcome and whose workflow never
    started, with their own hand-off ids, in one transaction with the audit entry. A
    hand-off whose execution started is left alone (abort it first, if that is what is
    wanted): then, or with none pending, ``unchanged``."""
    if not reason.strip():
        raise ValueError("a reason is required")
    at = now or datetime.now(UTC)
    refused = await order_status(store, order_id, terminal_states)
    if refused is not None:
        return refused
    pending = [h for i in await store.instances_of(order_id)
               if i.state not in terminal_states
               for h in handoffs_of(i.data) if h.outcome is None]
    waiting = [h for h in pending if h.execution_arn is None]
    sent: list[str] = []
    missing: list[str] = []
    async with store.transaction() as tx:
        for handoff in waiting:
            if await republish(tx, handoff.handoff_id, order_id, at):
                sent.append(handoff.handoff_id)
            else:
                missing.append(handoff.handoff_id)
        if sent:
            result = ActionResult("requested", True, f"hand-off {', '.join(sent)} of order "
                                  f"{order_id!r} published again (same hand-off id)",
                                  {"handoffs": sent})
        elif missing:
            result = ActionResult("unchanged", False, f"hand-off {', '.join(missing)} has no "
                                  "EventBridge entry in the outbox (purged?): nothing sent",
                                  {"handoffs": []})
        elif pending:
            result = ActionResult("unchanged", False, f"the workflow of order {order_id!r}'s "
                                  "hand-off has started: nothing sent (abort its execution "
                                  "first if it must start again)", {"handoffs": []})
        else:
            result = ActionResult("unchanged", False, f"order {order_id!r} has no pending "
                                  "hand-off: nothing sent", {"handoffs": []})
        await audit.record(AuditEntry(
            at=at, actor=actor, action="retry-handoff", target=order_id,
            correlation_id=order_id, outcome="republished" if sent else "unchanged",
            reason=reason, detail={"handoffs": sent, "missing": missing}), transaction=tx)
    return result
