"""Putting a timeline together from the store, the reviews and Step Functions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from bridge._handoffs import handoffs_of
from bridge.audit import AuditEntry, AuditLog
from bridge.reviews import Review, ReviewStore, StepFunctions, execution_console_url
from core_saga import AwsConfig, SagaModel
from core_saga.persistence import InboxRecord, SagaStore

from ._entries import (
    audit_entries,
    compensation_types,
    error_entries,
    handoff_entries,
    history_entries,
    merge,
    outbox_entries,
    review_entries,
)
from ._executions import read_execution
from ._model import ExecutionLink, Timeline, TimelineEntry
from ._redact import redact, tokens_in
from ._status import status_line
from ._why import explain


def _jsonable(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, default=str))


async def _safe_reviews(reviews: ReviewStore | None, correlation_id: str
                        ) -> tuple[list[Review], list[str]]:
    if reviews is None:
        return [], []
    try:
        return (await reviews.list_reviews(status=None, correlation_id=correlation_id),
                await reviews.tokens_for(correlation_id))
    except (OperationalError, ProgrammingError, DBAPIError):
        return [], []  # no review_tasks table in this database


def _anchors(transitions: Sequence[TimelineEntry], written: Sequence[TimelineEntry]
             ) -> dict[int, datetime]:
    """Sort what a transition wrote (outbox rows it caused, hand-offs it recorded a
    moment before its history row) right after the transition."""
    by_message = {e.details.get("messageId"): e.at for e in transitions}
    times = sorted(e.at for e in transitions)
    anchors: dict[int, datetime] = {}
    for entry in written:
        cause = entry.details.get("causationId")
        if entry.source == "outbox" and cause in by_message:
            anchors[id(entry)] = max(entry.at, by_message[cause])
        elif entry.source == "handoff" and entry.details.get("requested"):
            later = [t for t in times if entry.at <= t <= entry.at + timedelta(seconds=1)]
            if later:
                anchors[id(entry)] = later[0]
    return anchors


async def _safe_audit(audit: AuditLog | None, correlation_id: str) -> list[AuditEntry]:
    if audit is None:
        return []
    try:
        entries, _ = await audit.entries(correlation_id=correlation_id, limit=500)
    except (OperationalError, ProgrammingError, DBAPIError):
        return []  # no audit_log table in this database
    return list(reversed(entries))


async def _executions(arns: dict[str, tuple[str | None, str | None]],
                      sfn: StepFunctions | None, aws: AwsConfig
                      ) -> tuple[list[ExecutionLink], list[TimelineEntry], set[str]]:
    """Each supervisor execution's link, its history as entries, and the task tokens
    seen. An execution that cannot be read says why on its link; the rest renders."""
    links: list[ExecutionLink] = []
    entries: list[TimelineEntry] = []
    tokens: set[str] = set()
    for arn, (hid, workflow) in arns.items():
        link = ExecutionLink(handoff_id=hid, workflow=workflow, execution_arn=arn,
                             console_url=execution_console_url(aws, arn))
        if sfn is not None:
            try:
                events = await sfn.execution_history(arn)
                found, found_tokens, path = read_execution(arn, events)
                entries += found
                tokens |= found_tokens
                link.states_entered, link.current_state = path.entered, path.current
                described = await sfn.describe_execution(arn)
                link.status = str(described.get("status"))
                link.state_machine_arn = described.get("stateMachineArn")
                if aws.local:
                    link.describe = _jsonable(described)
                    tokens |= tokens_in(link.describe)
            except Exception as exc:  # the order's page must render without AWS
                link.error = f"{type(exc).__name__}: {exc}"
        links.append(link)
    return links, entries, tokens


async def build_timeline(store: SagaStore, correlation_id: str, *,
                         saga_type: str | None = None, sfn: StepFunctions | None = None,
                         reviews: ReviewStore | None = None,
                         audit: AuditLog | None = None,
                         model: SagaModel | None = None,
                         aws: AwsConfig | None = None,
                         now: datetime | None = None) -> Timeline | None:
    """The timeline of the order `correlation_id` (of `saga_type`, or the first saga
    type that has it), or None when nothing is known about it.

    Everything comes through the store's public reads (:class:`SagaStore`), so it works
    on every store. `sfn` reads each supervisor execution's history (and, on the
    emulator, its DescribeExecution); without it the Step Functions part is left out.
    `model` (the saga's compiled model) marks its compensations and says what the
    order waits for; `reviews` adds the stored reviews; `audit` what people did to it
    (redrives, resumes, cancels: the audit log's entries of the order).
    """
    aws = aws or (sfn.config if sfn is not None else AwsConfig.from_env())
    live = await store.instances_of(correlation_id)
    if saga_type is not None:
        live = [r for r in live if r.saga_type == saga_type]
    history = await store.history_of(correlation_id, saga_type=saga_type)
    record = live[0] if live else None
    if record is None and not history:
        return None
    kind_of = record.saga_type if record else history[-1].saga_type
    history = [h for h in history if h.saga_type == kind_of]
    rows = await store.outbox_for(correlation_id)
    acted = await _safe_audit(audit, correlation_id)
    # The operator's cancels went to the saga's queue, not through the outbox: whether
    # the saga handled them is read from the inbox as well.
    cancels = {str(e.detail["messageId"]) for e in acted
               if e.action == "cancel" and e.detail and e.detail.get("messageId")}
    handled: dict[str, list[InboxRecord]] = {}
    for entry in await store.inbox_for({row.message_id for row in rows} | cancels):
        handled.setdefault(entry.message_id, []).append(entry)
    review_list, review_tokens = await _safe_reviews(reviews, correlation_id)
    data = record.data if record else {}
    handoffs = handoffs_of(data)
    compensations = compensation_types(model) if model is not None else frozenset()

    sent, traces, tokens = outbox_entries(rows, compensations=compensations, handled=handled)
    failures, error_traces = error_entries(await store.errors_for(correlation_id))
    traces |= error_traces
    tokens |= set(review_tokens) | tokens_in(data)

    arns: dict[str, tuple[str | None, str | None]] = {}
    for handoff in handoffs:
        if handoff.execution_arn:
            arns[handoff.execution_arn] = (handoff.handoff_id, handoff.workflow)
    for review in review_list:
        arns.setdefault(review.execution_arn, (review.handoff_id, "ManualReview"))
    executions, supervisor, execution_tokens = await _executions(arns, sfn, aws)
    tokens |= execution_tokens

    transitions = history_entries(history)
    handed = handoff_entries(handoffs)
    entries = merge(transitions, handed, sent, failures, supervisor,
                    review_entries(review_list),
                    audit_entries(acted),
                    anchors=_anchors(transitions, [*handed, *sent]))
    entries = [e.model_copy(update={"summary": redact(e.summary, tokens),
                                    "details": redact(_jsonable(e.details), tokens)})
               for e in entries]
    for link in executions:
        if link.describe is not None:
            link.describe = redact(link.describe, tokens)
    timeline = Timeline(
        saga_type=kind_of, correlation_id=correlation_id,
        state=record.state if record else history[-1].to_state,
        version=record.version if record else None,
        created_at=record.created_at if record else (history[0].at if history else None),
        updated_at=record.updated_at if record else history[-1].at,
        finished=record is None, data=redact(_jsonable(data), tokens),
        handoffs=[redact(_jsonable(h.model_dump(mode="json")), tokens) for h in handoffs],
        entries=entries, executions=executions, trace_ids=sorted(traces),
        reviews=[r.as_dict() for r in review_list],
        path=_path(history))
    moment = now or datetime.now(UTC)
    timeline.waiting_for = [redact(line, tokens) for line in explain(
        timeline, model=model, rows=rows, handled=handled, reviews=review_list,
        handoffs=handoffs, now=moment)]
    timeline.status = redact(status_line(timeline, model=model, rows=rows,
                                         reviews=review_list, handoffs=handoffs,
                                         now=moment, handled=handled), tokens)
    return timeline


def _path(history: Sequence[Any]) -> list[str]:
    """The states the saga went through, in order (a state once per stay)."""
    path: list[str] = []
    for record in history:
        if not path:
            path.append(record.from_state)
        if record.to_state != path[-1]:
            path.append(record.to_state)
    return path
