"""Cancel an order through its saga: an :class:`~core_saga.OperatorCancel` sent to the
saga's queue, which the saga handles in every state that is not final."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from bridge.audit import AuditEntry, AuditLog
from core_saga import Envelope, OperatorCancel, SagaModel, handles_operator_cancel
from core_saga.persistence import SagaStore
from core_saga.transports import TransportMessage

from ._result import ActionResult
from ._resume import order_status

Send = Callable[[str, TransportMessage], Awaitable[None]]
"""Puts a message on a queue (its name without the workers' prefix); raises when the
queue did not take it."""


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


async def cancel_order(store: SagaStore, audit: AuditLog, send: Send, order_id: str, *,
                       actor: str, reason: str, models: Mapping[str, SagaModel],
                       queues: Mapping[str, str], now: datetime | None = None
                       ) -> ActionResult:
    """Ask the saga of `order_id` to cancel: an ``OperatorCancel`` on its queue
    (`queues`: saga type → queue). Refused, with nothing sent, for an unknown or
    finished order, a saga that does not handle the cancel (or is unknown, or has no
    queue here); a cancel already requested while the order still runs is not sent
    again (``unchanged``). A send the queue did not take changes nothing (``failed``).
    Audited, but for the refusals of unknown and finished orders."""
    if not reason.strip():
        raise ValueError("a reason is required")
    at = now or datetime.now(UTC)
    terminal = frozenset().union(*(m.terminal_states for m in models.values()))
    refused = await order_status(store, order_id, terminal)
    if refused is not None:
        return refused
    running = [i for i in await store.instances_of(order_id) if i.state not in terminal]
    instance = running[0]
    model = models.get(instance.saga_type)

    async def audited(outcome: str, result: ActionResult, **detail: Any) -> ActionResult:
        await audit.record(AuditEntry(
            at=at, actor=actor, action="cancel", target=order_id, correlation_id=order_id,
            outcome=outcome, reason=reason, detail={"sagaType": instance.saga_type,
                                                    **detail}))
        return result

    if model is None:
        return await audited("unsupported", ActionResult(
            "unsupported", False, f"saga {instance.saga_type!r} is not known here (name its "
            "class: STEPSAGA_CONSOLE_SAGAS or --saga): nothing sent"))
    if not handles_operator_cancel(model):
        return await audited("unsupported", ActionResult(
            "unsupported", False, f"saga {instance.saga_type!r} does not handle an operator "
            "cancel (it declares no OperatorCancel event): nothing sent, the order is as "
            "it was"))
    queue = queues.get(instance.saga_type)
    if not queue:
        return await audited("unsupported", ActionResult(
            "unsupported", False, f"no queue is configured for saga {instance.saga_type!r} "
            "(STEPSAGA_CONSOLE_SAGA_QUEUES or --queue): nothing sent"))
    earlier, _ = await audit.entries(correlation_id=order_id, limit=100)
    asked = next((e for e in earlier if e.action == "cancel" and e.outcome == "requested"),
                 None)
    if asked is not None:
        return await audited("unchanged", ActionResult(
            "unchanged", False, f"a cancel was requested by {asked.actor} at "
            f"{asked.at:%Y-%m-%d %H:%M:%S} UTC and the saga is on it (in "
            f"{instance.state}): nothing sent again"))
    envelope = Envelope(OperatorCancel(correlation_id=order_id, actor=actor, reason=reason),
                        correlation_id=order_id)
    message = TransportMessage(body=envelope.encode(), message_id=envelope.message_id,
                               message_type=envelope.message_type, correlation_id=order_id)
    try:
        await send(queue, message)
    except Exception as exc:  # SQS unreachable or refusing: nothing was sent
        return await audited("failed", ActionResult(
            "failed", False, f"the queue {queue!r} did not take the cancel "
            f"({type(exc).__name__}: {_first_line(exc)}): nothing changed; try again"),
            error=_first_line(exc))
    return await audited("requested", ActionResult(
        "requested", True, f"cancel of order {order_id!r} sent to its saga on {queue!r} (in "
        f"{instance.state}): it compensates what was done and ends canceled"),
        queue=queue, messageId=envelope.message_id)
