"""Abort an order's supervisor execution: StopExecution with the operator's reason."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any, Protocol

from bridge._handoffs import handoffs_of
from bridge.audit import AuditEntry, AuditLog
from core_saga.persistence import SagaStore

from ._result import ActionResult
from ._resume import order_status

ABORT_ERROR = "OperatorAborted"
"""The error an aborted execution stops with; its cause is "NAME: WHY"."""


class Executions(Protocol):
    """The two Step Functions calls an abort makes (:class:`bridge.reviews.StepFunctions`)."""

    async def describe_execution(self, execution_arn: str) -> dict[str, Any]: ...

    async def stop_execution(self, execution_arn: str, error: str, cause: str) -> None: ...


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


async def abort_execution(store: SagaStore, audit: AuditLog, sfn: Executions, order_id: str,
                          *, actor: str, reason: str, terminal_states: Collection[str] = (),
                          now: datetime | None = None) -> ActionResult:
    """Stop the running supervisor executions of `order_id`'s hand-offs (those without
    an outcome), with error ``OperatorAborted`` and "ACTOR: REASON" as the cause. None
    running: ``unchanged``. Step Functions unreachable or refusing: ``failed``, and the
    executions not stopped yet are as they were. Audited, but for the refusals of
    unknown and finished orders."""
    if not reason.strip():
        raise ValueError("a reason is required")
    at = now or datetime.now(UTC)
    refused = await order_status(store, order_id, terminal_states)
    if refused is not None:
        return refused
    arns = [h.execution_arn for i in await store.instances_of(order_id)
            if i.state not in terminal_states
            for h in handoffs_of(i.data) if h.execution_arn and h.outcome is None]
    stopped: list[str] = []
    problem: str | None = None
    for arn in arns:
        try:
            status = (await sfn.describe_execution(arn)).get("status")
            if status == "RUNNING":
                await sfn.stop_execution(arn, ABORT_ERROR, f"{actor}: {reason}")
                stopped.append(arn)
        except Exception as exc:  # Step Functions unreachable or refusing
            problem = f"{type(exc).__name__}: {_first_line(exc)}"
            break
    if problem is not None:
        outcome, result = "failed", ActionResult(
            "failed", bool(stopped), f"Step Functions did not answer ({problem}): "
            f"{len(stopped)} execution(s) stopped, the others are as they were; try again",
            {"stopped": stopped})
    elif stopped:
        outcome, result = "aborted", ActionResult(
            "aborted", True, f"stopped {len(stopped)} execution(s) of order {order_id!r} "
            f"({ABORT_ERROR}: {actor}: {reason})", {"stopped": stopped})
    else:
        outcome, result = "unchanged", ActionResult(
            "unchanged", False, f"order {order_id!r} has no running supervisor execution: "
            "nothing changed", {"stopped": []})
    await audit.record(AuditEntry(
        at=at, actor=actor, action="abort", target=order_id, correlation_id=order_id,
        outcome=outcome, reason=reason,
        detail={"stopped": stopped, **({"error": problem} if problem else {})}))
    return result
