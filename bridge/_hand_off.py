"""The ``hand_off`` activity and the supervision events of a saga.

A saga hands an instance to a Step Functions Standard workflow with one activity::

    class OrderSaga(Saga[OrderState]):            # OrderState(SupervisedState)
        supervision_started = supervision_started_event()
        supervision_completed = supervision_completed_event()

        def define(self) -> None:
            self.initially(
                self.when(self.order_submitted)
                .activity(hand_off("ManualReview", reason=..., payload=...,
                                   config=lambda ctx: ctx.machine.settings.handoff,
                                   then=self.awaiting_review)))
            self.during(self.awaiting_review,
                self.when(self.supervision_completed, filter=outcome_is("approved"))...,
                self.when(self.supervision_completed, filter=outcome_is("rejected"))...)
            self.during_any(*track_supervision(self.supervision_started,
                                               self.supervision_completed))

``hand_off`` writes ``SupervisionRequested`` to the outbox (an EventBridge entry, put on
the bus after the commit), records a :class:`HandoffRecord` on the instance and moves
it to the waiting state. The workflow reports ``SupervisionStarted`` (its execution ARN
lands on the record) and later ``SupervisionCompleted``, which the saga handles like
any event. Each delivery of ``SupervisionCompleted`` is acknowledged with
``SendTaskSuccess`` after the saga's commit, and its outcome is applied once per
hand-off, however often it is delivered.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeAlias, TypeVar

from core_saga import (
    Activity,
    BehaviorContext,
    ConsumeContext,
    Event,
    EventActivityBinder,
    MissingInstance,
    Schedule,
    State,
)
from core_saga.tracing import current_traceparent

from ._handoffs import HandoffRecord, SupervisedState
from ._lost_handoffs import (
    OnExecutionChanged,
    OnStartedDeadline,
    arm_started_deadline,
    disarm_started_deadline,
)
from ._publisher import put_event
from ._task_answers import acknowledge_handoff
from .contracts import (
    MAX_EVENTBRIDGE_ENTRY_BYTES,
    QUEUE_URL_PATTERN,
    TRACEPARENT_HEADER,
    WORKFLOW_MANUAL_REVIEW,
    WORKFLOW_SLOW_SHIPPING,
    Outcome,
    SupervisionCompleted,
    SupervisionDeadlineExpired,
    SupervisionExecutionChanged,
    SupervisionRequested,
    SupervisionStarted,
    Workflow,
    event_source,
    handoff_id,
)

log = logging.getLogger("bridge.hand_off")

S = TypeVar("S", bound=SupervisedState)
T = TypeVar("T")
Ctx = BehaviorContext[Any, Any]
ValueOf: TypeAlias = T | Callable[[Ctx], T | Awaitable[T]]
"""A value, or a function of the behavior's context giving it (sync or ``async``, as
everywhere in the saga DSL)."""

WORKFLOW_OUTCOMES: dict[str, tuple[str, ...]] = {
    WORKFLOW_MANUAL_REVIEW: ("approved", "rejected", "timed_out"),
    WORKFLOW_SLOW_SHIPPING: ("shipped", "failed"),
}
"""The outcomes each workflow can report; any other is refused (the message faults)."""

DEFAULT_STARTED_DEADLINE = timedelta(minutes=5)
"""How long a publish waits for ``SupervisionStarted`` unless configured."""
DEFAULT_REPUBLISHES = 3
"""Re-publishes after missed deadlines unless configured."""

OUTCOME_CONSUMER_SUFFIX = "#supervision-outcome"
"""The inbox consumer under which applied hand-off ids are claimed (``<queue>#...``)."""


@dataclass(frozen=True)
class HandOffConfig:
    """Where hand-offs go and where replies come back."""

    bus: str
    """The EventBridge bus name (or ARN) the rules listen on."""
    reply_to: str
    """The SQS queue URL of the saga, where the workflow sends its replies."""
    source: str | None = None
    """The event's ``source``; default ``stepsaga.<saga type>``."""
    max_entry_bytes: int = MAX_EVENTBRIDGE_ENTRY_BYTES
    """The EventBridge entry limit of the account (1 MB by default)."""
    started_deadline: timedelta = DEFAULT_STARTED_DEADLINE
    """How long each publish of a hand-off waits for ``SupervisionStarted`` before the
    saga puts the same hand-off on the bus again (five minutes by default). Needs the
    saga to declare ``supervision_deadline_schedule()``."""
    republishes: int = DEFAULT_REPUBLISHES
    """Re-publishes after a missed deadline (three by default); when the last one misses
    its deadline too, the hand-off is lost and the saga gets ``SupervisionLost``."""

    def __post_init__(self) -> None:
        if self.started_deadline <= timedelta(0):
            raise ValueError(f"HandOffConfig.started_deadline must be positive; got "
                             f"{self.started_deadline}")
        if isinstance(self.republishes, bool) or not isinstance(self.republishes, int) or \
                self.republishes < 0:
            raise ValueError(f"HandOffConfig.republishes must be an integer >= 0; got "
                             f"{self.republishes!r}")
        if not self.bus:
            raise ValueError("HandOffConfig.bus must name the EventBridge bus")
        if not self.reply_to or not re.match(QUEUE_URL_PATTERN, self.reply_to):
            raise ValueError("HandOffConfig.reply_to must be the saga's SQS queue URL "
                             f"(https://sqs.<region>.amazonaws.com/<account>/<queue>); got "
                             f"{self.reply_to!r}")


async def _value(value: ValueOf[T], ctx: Ctx) -> T:
    if not callable(value):
        return value
    result = value(ctx)
    if inspect.isawaitable(result):
        return await result
    return result


def request_supervision(ctx: Ctx, workflow: Workflow, *, reason: str,
                        payload: dict[str, Any], config: HandOffConfig) -> HandoffRecord:
    """Hand the instance of `ctx` to `workflow` now: ``SupervisionRequested`` to the
    outbox and a record on the instance. The hand-off id is derived from the saga type,
    the correlation id, the workflow and how many hand-offs to that workflow the
    instance made before, so a re-run of the same message yields the same id (and the
    workflow claims it once). Raises ``PayloadTooLargeError`` when the detail would not
    fit a Step Functions input (256 KiB)."""
    saga = ctx.saga
    if not isinstance(saga, SupervisedState):
        raise TypeError(f"hand_off needs the saga's state to subclass SupervisedState; "
                        f"{type(saga).__name__} does not")
    saga_type = ctx.machine.saga_name
    attempt = 1 + sum(1 for r in saga.handoffs if r.workflow == workflow)
    hid = handoff_id(saga_type, saga.correlation_id, workflow, attempt)
    request = SupervisionRequested(
        handoff_id=hid, saga_type=saga_type, correlation_id=saga.correlation_id,
        workflow=workflow, reason=reason, payload=payload, reply_to=config.reply_to,
        traceparent=current_traceparent() or ctx.envelope.headers.get(TRACEPARENT_HEADER))
    detail = request.check_size()
    source = config.source or event_source(saga_type)
    put_event(ctx, bus=config.bus, source=source,
              detail_type=SupervisionRequested.detail_type, detail=detail, message_id=hid,
              correlation_id=saga.correlation_id, limit=config.max_entry_bytes)
    record = HandoffRecord(handoff_id=hid, workflow=workflow, reason=reason,
                           requested_at=ctx.now,
                           started_deadline_seconds=config.started_deadline.total_seconds(),
                           max_publishes=1 + config.republishes,
                           request={"bus": config.bus, "source": source,
                                    "detail": detail.decode()})
    saga.handoffs = [*saga.handoffs, record]
    log.info("saga %s %s: handed off to %s (%s): %s", saga_type, saga.correlation_id,
             workflow, hid, reason)
    return record


class HandOff(Activity):
    """The ``hand_off`` activity (see :func:`hand_off`)."""

    kind = "hand_off"

    def __init__(self, workflow: Workflow, *, reason: ValueOf[str],
                 payload: ValueOf[dict[str, Any]], config: ValueOf[HandOffConfig],
                 then: State | None = None) -> None:
        self.workflow = workflow
        self.reason = reason
        self.payload = payload
        self.config = config
        self.then = then

    async def execute(self, ctx: Ctx) -> None:
        record = request_supervision(ctx, self.workflow, reason=await _value(self.reason, ctx),
                                     payload=await _value(self.payload, ctx),
                                     config=await _value(self.config, ctx))
        if self.then is not None:
            record.waiting_state = self.then.name
            ctx.transition(self.then.name)
        arm_started_deadline(ctx, record)

    def target_states(self) -> tuple[State, ...]:
        return () if self.then is None else (self.then,)

    def label(self) -> str:
        return f"hand_off {self.workflow}"


def hand_off(workflow: Workflow, *, reason: ValueOf[str], payload: ValueOf[dict[str, Any]],
             config: ValueOf[HandOffConfig], then: State | None = None) -> HandOff:
    """An activity that hands the saga instance to the Step Functions `workflow`
    (``ManualReview`` or ``SlowShipping``) and, with `then`, moves it to that waiting
    state. `reason`, `payload` and `config` are values or functions of the behavior's
    context. Add it with ``.activity(hand_off(...))``."""
    return HandOff(workflow, reason=reason, payload=payload, config=config, then=then)


# -- the replies ------------------------------------------------------------------------------

async def _acknowledge_and_claim(ctx: ConsumeContext[SupervisionCompleted]) -> bool:
    """Every delivery is acknowledged (after the commit); only the first per hand-off
    goes on to the saga."""
    message = ctx.message
    allowed = WORKFLOW_OUTCOMES.get(message.workflow, ())
    if message.outcome not in allowed:
        raise ValueError(f"hand-off {message.handoff_id}: outcome {message.outcome!r} does not "
                         f"belong to workflow {message.workflow} (expected one of {allowed})")
    token = ctx.task_token or message.task_token
    first = await ctx.transaction.claim_once(ctx.endpoint + OUTCOME_CONSUMER_SUFFIX,
                                             message.handoff_id)
    if token:
        acknowledge_handoff(ctx, token, {"handoffId": message.handoff_id,
                                         "acknowledgedBy": ctx.endpoint}, handoff={
            "handoffId": message.handoff_id, "workflow": message.workflow,
            "outcome": message.outcome, "executionArn": message.execution_arn,
            "first": bool(first),
            # the context the workflow carried: the hand-off's PutEvents span
            "traceparent": ctx.envelope.headers.get(TRACEPARENT_HEADER)})
    if not first:
        log.info("hand-off %s: outcome %s delivered again; acknowledged, applied before",
                 message.handoff_id, message.outcome)
    return bool(first)


def _correlation(message: SupervisionStarted | SupervisionCompleted) -> str:
    return message.correlation_id


def supervision_started_event() -> Event[SupervisionStarted]:
    """The event of ``SupervisionStarted``: declare it on the saga class. A report for an
    instance that no longer exists is dropped (logged)."""
    return Event(SupervisionStarted, correlate_by=_correlation,
                 on_missing=MissingInstance.DISCARD)


def supervision_completed_event() -> Event[SupervisionCompleted]:
    """The event of ``SupervisionCompleted``: declare it on the saga class. Each delivery
    is acknowledged with ``SendTaskSuccess`` after the saga's commit, in every state; the
    outcome reaches the saga's behaviors once per hand-off. An outcome for an instance
    that no longer exists is acknowledged and dropped (logged)."""
    return Event(SupervisionCompleted, correlate_by=_correlation,
                 on_missing=MissingInstance.DISCARD, on_receipt=_acknowledge_and_claim)


def _record_for(ctx: Ctx) -> HandoffRecord | None:
    saga = ctx.saga
    if not isinstance(saga, SupervisedState):
        return None
    return saga.handoff(ctx.message.handoff_id)


def outcome_is(*outcomes: Outcome) -> Callable[[Ctx], bool]:
    """A behavior filter: the ``SupervisionCompleted`` carries one of `outcomes`, for a
    hand-off of this instance whose outcome is not applied yet."""
    wanted = frozenset(outcomes)

    def matches(ctx: Ctx) -> bool:
        record = _record_for(ctx)
        return ctx.message.outcome in wanted and record is not None and record.pending
    matches.__name__ = "outcome_is_" + "_or_".join(outcomes)
    return matches


class RecordStarted(Activity):
    """Notes the execution ARN of ``SupervisionStarted`` on the hand-off's record."""

    kind = "record_supervision_started"

    async def execute(self, ctx: Ctx) -> None:
        record = _record_for(ctx)
        message: SupervisionStarted = ctx.message
        if record is None:
            log.warning("saga %s: SupervisionStarted for unknown hand-off %s",
                        ctx.saga.correlation_id, message.handoff_id)
            return
        record.execution_arn = message.execution_arn
        record.started_at = message.started_at
        disarm_started_deadline(ctx, record)

    def label(self) -> str:
        return "record supervision started"


class RecordOutcome(Activity):
    """Notes the outcome of ``SupervisionCompleted`` on the hand-off's record."""

    kind = "record_supervision_outcome"

    async def execute(self, ctx: Ctx) -> None:
        record = _record_for(ctx)
        message: SupervisionCompleted = ctx.message
        if record is None:
            log.warning("saga %s: SupervisionCompleted for unknown hand-off %s",
                        ctx.saga.correlation_id, message.handoff_id)
            return
        if record.pending:
            record.outcome = message.outcome
            record.result = dict(message.result)
            record.completed_at = ctx.now
            record.execution_arn = record.execution_arn or message.execution_arn
            disarm_started_deadline(ctx, record)

    def label(self) -> str:
        return "record supervision outcome"


def track_supervision(started: Event[SupervisionStarted],
                      completed: Event[SupervisionCompleted], *,
                      deadline: Schedule[SupervisionDeadlineExpired] | None = None,
                      execution: Event[SupervisionExecutionChanged] | None = None
                      ) -> tuple[EventActivityBinder[Any, Any], ...]:
    """The ``during_any`` behaviors that keep the hand-off records current: the
    execution ARN from ``SupervisionStarted``, the outcome from ``SupervisionCompleted``
    (after the state's own behavior for it). An outcome arriving in a state with no
    behavior for it is recorded, not acted on.

    With `deadline` (``supervision_deadline_schedule()``), a hand-off whose
    ``SupervisionStarted`` does not come within ``HandOffConfig.started_deadline`` is
    put on the bus again, ``HandOffConfig.republishes`` times, then given up:
    ``SupervisionLost`` (cause ``not_started``) goes to the saga. With `execution`
    (``supervision_execution_event()``), Step Functions' report of an execution that
    ended FAILED, TIMED_OUT or ABORTED before the outcome makes the hand-off lost the
    same way (applied once; a report for an execution that answered, or a repeat,
    changes nothing)."""
    on_started: EventActivityBinder[Any, SupervisionStarted] = EventActivityBinder(started)
    on_completed: EventActivityBinder[Any, SupervisionCompleted] = EventActivityBinder(completed)
    binders: list[EventActivityBinder[Any, Any]] = [
        on_started.activity(RecordStarted()), on_completed.activity(RecordOutcome())]
    if deadline is not None:
        on_deadline: EventActivityBinder[Any, SupervisionDeadlineExpired] = (
            EventActivityBinder(deadline.received))
        binders.append(on_deadline.activity(OnStartedDeadline()))
    if execution is not None:
        on_execution: EventActivityBinder[Any, SupervisionExecutionChanged] = (
            EventActivityBinder(execution))
        binders.append(on_execution.activity(OnExecutionChanged()))
    return tuple(binders)
