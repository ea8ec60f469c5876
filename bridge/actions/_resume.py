"""Resume a stuck order: its unsent outbox rows due now, its timers re-armed or fired."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from sqlalchemy import and_, or_, select, update

from bridge.audit import AuditEntry, AuditLog
from core_saga.persistence import SagaStore
from core_saga.persistence._schema import outbox

from ._result import ActionResult


async def order_status(store: SagaStore, order_id: str,
                       terminal_states: Collection[str]) -> ActionResult | None:
    """None when `order_id` is a running order; else the refusal to answer (unknown or
    finished order: nothing changed)."""
    instances = await store.instances_of(order_id)
    running = [i for i in instances if i.state not in terminal_states]
    if running:
        return None
    if instances or await store.history_of(order_id):
        state = instances[0].state if instances else "its final state"
        return ActionResult("finished", False, f"order {order_id!r} has ended ({state}): "
                                               "nothing to do, nothing changed")
    return ActionResult("not_found", False, f"no order {order_id!r}: nothing changed")


async def resume_order(store: SagaStore, audit: AuditLog, order_id: str, *, actor: str,
                       reason: str, terminal_states: Collection[str] = (),
                       fire_timers: bool = False, now: datetime | None = None
                       ) -> ActionResult:
    """Make the order's outbox rows that are unsent (due, failed for good, or leased by a
    dispatcher that went away) due now with a fresh retry budget, and re-arm its timers
    (their lease cleared; with `fire_timers`, due now). The change and its audit entry are
    written in one transaction; a second resume with nothing left to send changes nothing
    (``unchanged``) and is audited as such."""
    if not reason.strip():
        raise ValueError("a reason is required")
    at = now or datetime.now(UTC)
    refused = await order_status(store, order_id, terminal_states)
    if refused is not None:
        return refused
    mine = and_(outbox.c.correlation_id == order_id, outbox.c.dispatched_at.is_(None))
    due = or_(outbox.c.failed.is_(True), outbox.c.deliver_at <= at, outbox.c.attempts > 0)
    stale_lease = and_(outbox.c.locked_until.is_not(None), outbox.c.locked_until < at)
    async with store.transaction() as tx:
        resent = list((await tx.execute(
            select(outbox.c.id).where(mine, due))).scalars())
        timers = list((await tx.execute(
            select(outbox.c.id).where(mine, outbox.c.failed.is_(False),
                                      outbox.c.attempts == 0,
                                      outbox.c.deliver_at > at))).scalars())
        rearmed = list((await tx.execute(select(outbox.c.id).where(
            mine, outbox.c.id.in_(timers), stale_lease))).scalars()) if timers else []
        if resent:
            await tx.execute(update(outbox).where(outbox.c.id.in_(resent)).values(
                deliver_at=at, failed=False, attempts=0, locked_until=None))
        fired = timers if fire_timers else []
        if fired:
            await tx.execute(update(outbox).where(outbox.c.id.in_(fired)).values(
                deliver_at=at, locked_until=None))
        elif rearmed:
            await tx.execute(update(outbox).where(outbox.c.id.in_(rearmed)).values(
                locked_until=None))
        changed = bool(resent or fired or rearmed)
        parts = [f"{len(resent)} message(s) due now"]
        if fire_timers:
            parts.append(f"{len(fired)} timer(s) fired")
        else:
            parts.append(f"{len(timers)} timer(s) left to fire when due"
                         + (f" ({len(rearmed)} re-armed)" if rearmed else ""))
        message = (f"order {order_id!r} resumed: " if changed else
                   f"order {order_id!r} had nothing to resend; nothing changed: ") \
            + ", ".join(parts)
        detail = {"resent": len(resent), "timers": len(timers), "fired": len(fired),
                  "rearmed": len(rearmed)}
        await audit.record(AuditEntry(
            at=at, actor=actor, action="resume", target=order_id, correlation_id=order_id,
            outcome="resumed" if changed else "unchanged", reason=reason, detail=detail),
            transaction=tx)
    return ActionResult("resumed" if changed else "unchanged", changed, message, detail)
