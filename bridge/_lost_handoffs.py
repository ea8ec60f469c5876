"""No lost hand-off: the deadline for ``SupervisionStarted``, the re-publish, and the
``SupervisionLost`` outcome.

Each publish of a hand-off arms a durable timer (the saga's
``supervision_deadline_schedule()``, an outbox row delivered at its time, so it
survives restarts). ``SupervisionStarted`` disarms it. When it fires first, the same
hand-off (same id, same detail) goes on the bus again — the workflow claims a hand-off
id once, so a duplicate start ends at once — and the timer is armed again, up to
``HandOffConfig.republishes`` times. After the last miss the record is marked lost
(``not_started``) and ``SupervisionLost`` is sent to the saga's own queue, where the
app's behaviors decide what the order does instead.

Step Functions' own status events bring the other way a hand-off gets lost: an
execution that ends FAILED, TIMED_OUT or ABORTED before the saga has its outcome. The
saga applies such a report once: it marks the record lost with the status and sends
``SupervisionLost``; a report for an execution that already answered, for another
execution than the one that started the hand-off, or a repeat, changes nothing.

A lost supervision acts only while the saga still waits in the state the hand-off
moved it to (``hand_off(..., then=...)``): a saga that moved on (canceled by an
operator, say) keeps the record's note and nothing else happens.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from core_saga import Activity, BehaviorContext, Event, MissingInstance, Schedule
from core_saga.extension import SCHEDULE_TOKEN, SEND_KIND, new_id

from ._handoffs import HandoffRecord, SupervisedState
from ._publisher import put_event
from ._telemetry import record_handoff_lost
from .contracts import (
    SUPERVISION_DEADLINE_URN,
    LostCause,
    SupervisionDeadlineExpired,
    SupervisionExecutionChanged,
    SupervisionLost,
    SupervisionRequested,
    lost_cause,
)

log = logging.getLogger("bridge.hand_off")

Ctx = BehaviorContext[Any, Any]

DEADLINE_TOKEN_FIELD = "supervision_deadline_token"
"""The field of :class:`SupervisedState` holding the armed deadline's token."""


def _correlation(message: SupervisionExecutionChanged | SupervisionLost) -> str:
    return message.correlation_id


def supervision_deadline_schedule() -> Schedule[SupervisionDeadlineExpired]:
    """The durable timer of the hand-offs' deadline for ``SupervisionStarted``: declare
    it on the saga class and pass it to ``track_supervision(..., deadline=...)``. The
    ``hand_off`` activity arms it with ``HandOffConfig.started_deadline``."""
    return Schedule(SupervisionDeadlineExpired, token_field=DEADLINE_TOKEN_FIELD,
                    delay=timedelta(minutes=5))


def supervision_execution_event() -> Event[SupervisionExecutionChanged]:
    """The event of Step Functions' execution status changes (FAILED, TIMED_OUT,
    ABORTED) of the supervisor workflows: declare it on the saga class and pass it to
    ``track_supervision(..., execution=...)``. A report for an instance that no longer
    exists is dropped (logged)."""
    return Event(SupervisionExecutionChanged, correlate_by=_correlation,
                 on_missing=MissingInstance.DISCARD)


def supervision_lost_event() -> Event[SupervisionLost]:
    """The event the saga gets when a hand-off will not come back (see the module):
    declare it on the saga class and handle it in the states that wait for a
    supervision outcome. Dropped (logged) for an instance that no longer exists."""
    return Event(SupervisionLost, correlate_by=_correlation,
                 on_missing=MissingInstance.DISCARD)


def _supervised(ctx: Ctx) -> SupervisedState:
    saga = ctx.saga
    if not isinstance(saga, SupervisedState):
        raise TypeError(f"hand-offs need the saga's state to subclass SupervisedState; "
                        f"{type(saga).__name__} does not")
    return saga


def _deadline_declared(ctx: Ctx) -> bool:
    """Whether the saga declares the deadline schedule (else hand-offs have none)."""
    model = getattr(ctx.machine, "model", None)
    return bool(model is not None and model.events_by_urn.get(SUPERVISION_DEADLINE_URN))


def arm_started_deadline(ctx: Ctx, record: HandoffRecord) -> bool:
    """Arm (or re-arm) the deadline for `record`'s ``SupervisionStarted``, replacing the
    timer armed before. False when the hand-off has no deadline (none configured, or
    the saga does not declare ``supervision_deadline_schedule()``)."""
    saga = _supervised(ctx)
    if record.started_deadline_seconds is None or not _deadline_declared(ctx):
        return False
    previous = saga.supervision_deadline_token
    if previous:
        ctx.unscheduled.append(previous)
    token = new_id()
    expired = SupervisionDeadlineExpired(handoff_id=record.handoff_id,
                                         correlation_id=saga.correlation_id,
                                         publishes=record.publishes)
    envelope = ctx.make_envelope(expired, correlation_id=saga.correlation_id,
                                 headers={SCHEDULE_TOKEN: token})
    ctx.add(SEND_KIND, ctx.endpoint, envelope,
            deliver_at=ctx.now + timedelta(seconds=record.started_deadline_seconds),
            schedule_token=token)
    saga.supervision_deadline_token = token
    return True


def disarm_started_deadline(ctx: Ctx, record: HandoffRecord) -> None:
    """Cancel the armed deadline when it belongs to `record` (the latest hand-off)."""
    saga = _supervised(ctx)
    token = saga.supervision_deadline_token
    if token and saga.handoffs and saga.handoffs[-1].handoff_id == record.handoff_id:
        ctx.unscheduled.append(token)
        saga.supervision_deadline_token = None


def republish_handoff(ctx: Ctx, handoff_id: str) -> HandoffRecord:
    """Put the hand-off `handoff_id` of this saga on the bus again, as first published
    (same id and detail: a workflow that already claimed it ends the duplicate at
    once), count the publish and re-arm its deadline. For a behavior (the deadline's,
    or an operator's "retry hand-off" command). ValueError when the saga made no such
    hand-off, or it is no longer pending (its outcome applied, or lost)."""
    saga = _supervised(ctx)
    record = saga.handoff(handoff_id)
    if record is None:
        raise ValueError(f"saga {saga.correlation_id} made no hand-off {handoff_id}")
    if not record.pending:
        raise ValueError(f"hand-off {handoff_id} is over ("
                         f"{'lost: ' + record.lost if record.lost else record.outcome}); "
                         "nothing to re-publish")
    if not record.request:
        raise ValueError(f"hand-off {handoff_id} was recorded without its request; it "
                         "cannot be re-published")
    request = record.request
    put_event(ctx, bus=request["bus"], source=request["source"],
              detail_type=SupervisionRequested.detail_type, detail=request["detail"].encode(),
              message_id=record.handoff_id, correlation_id=saga.correlation_id)
    record.publishes += 1
    arm_started_deadline(ctx, record)
    log.info("saga %s: hand-off %s to %s published again (publish %d)",
             saga.correlation_id, handoff_id, record.workflow, record.publishes)
    return record


def _still_waiting(ctx: Ctx, record: HandoffRecord) -> bool:
    """The saga waits in the state the hand-off moved it to (or, without one, is not
    over)."""
    saga = ctx.saga
    if record.waiting_state is not None:
        return bool(saga.current_state == record.waiting_state)
    return saga.current_state not in ctx.machine.model.terminal_states


def mark_lost(ctx: Ctx, record: HandoffRecord, cause: LostCause, detail: str, *,
              execution_arn: str | None = None) -> bool:
    """Give up `record`: note why on it and, while the saga still waits for it, send
    ``SupervisionLost`` to the saga's own queue (one message id per hand-off). False
    when it was over already (nothing changes)."""
    saga = _supervised(ctx)
    if not record.pending:
        return False
    record.lost = cause
    record.lost_detail = detail
    record.lost_at = ctx.now
    disarm_started_deadline(ctx, record)
    record_handoff_lost(record.workflow, cause)
    if not _still_waiting(ctx, record):
        log.warning("saga %s: hand-off %s to %s lost (%s: %s) after the saga moved on to "
                    "%s; noted on the record only", saga.correlation_id, record.handoff_id,
                    record.workflow, cause, detail, saga.current_state)
        return True
    lost = SupervisionLost(handoff_id=record.handoff_id, correlation_id=saga.correlation_id,
                           workflow=record.workflow,
                           cause=cause, detail=detail,
                           execution_arn=execution_arn or record.execution_arn)
    envelope = ctx.make_envelope(lost, correlation_id=saga.correlation_id)
    envelope.message_id = SupervisionLost.message_id_for(record.handoff_id)
    ctx.add(SEND_KIND, ctx.endpoint, envelope)
    log.warning("saga %s: hand-off %s to %s lost: %s: %s", saga.correlation_id,
                record.handoff_id, record.workflow, cause, detail)
    return True


class OnStartedDeadline(Activity):
    """The deadline for ``SupervisionStarted`` passed: publish the hand-off again, or,
    with every publish spent, give it up (``not_started``)."""

    kind = "supervision_started_deadline"

    async def execute(self, ctx: Ctx) -> None:
        saga = _supervised(ctx)
        message: SupervisionDeadlineExpired = ctx.message
        record = saga.handoff(message.handoff_id)
        if record is None or not record.pending or record.started_at is not None:
            return  # started, answered or lost meanwhile: the timer is stale
        if not _still_waiting(ctx, record):
            log.info("saga %s: deadline of hand-off %s passed in state %s; the saga moved "
                     "on, nothing to do", saga.correlation_id, record.handoff_id,
                     saga.current_state)
            return
        if record.publishes < record.max_publishes:
            republish_handoff(ctx, record.handoff_id)
            return
        waited = timedelta(seconds=(record.started_deadline_seconds or 0) * record.publishes)
        mark_lost(ctx, record, "not_started",
                  f"no SupervisionStarted from {record.workflow} after {record.publishes} "
                  f"publish(es) over {waited}")

    def label(self) -> str:
        return "re-publish or give up the hand-off"


class OnExecutionChanged(Activity):
    """Step Functions reported a supervisor execution that ended without an outcome:
    the hand-off is lost (once)."""

    kind = "supervision_execution_changed"

    async def execute(self, ctx: Ctx) -> None:
        saga = _supervised(ctx)
        message: SupervisionExecutionChanged = ctx.message
        record = saga.handoff(message.handoff_id)
        if record is None:
            log.warning("saga %s: status %s of execution %s for unknown hand-off %s",
                        saga.correlation_id, message.status, message.execution_arn,
                        message.handoff_id)
            return
        if not message.unfinished or not record.pending:
            return  # it answered (or was given up) before; a repeat changes nothing
        if record.execution_arn and record.execution_arn != message.execution_arn:
            # a duplicate execution of a re-published hand-off, not the one that runs it
            log.info("saga %s: execution %s of hand-off %s ended %s; the hand-off runs in "
                     "%s", saga.correlation_id, message.execution_arn, record.handoff_id,
                     message.status, record.execution_arn)
            return
        record.execution_status = message.status
        record.execution_arn = record.execution_arn or message.execution_arn
        mark_lost(ctx, record, lost_cause(message.status),
                  f"the {record.workflow} execution ended {message.describe()}",
                  execution_arn=message.execution_arn)

    def label(self) -> str:
        return "supervision execution ended"
