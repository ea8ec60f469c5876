"""The timeline entries of each source: the saga's history, its outbox rows (and who
handled them), the error store, its hand-off records and its reviews; and their merge."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bridge._handoffs import HandoffRecord
from bridge._publisher import EVENTBRIDGE
from bridge._task_answers import TASK_ANSWER
from bridge.audit import AuditEntry
from bridge.contracts import (
    MESSAGE_NAMESPACE,
    SUPERVISION_COMPLETED_URN,
    SUPERVISION_STARTED_URN,
)
from bridge.reviews import Review
from core_saga import SagaModel
from core_saga.extension import SEND_KIND, UNROUTED_KIND
from core_saga.persistence import ErrorRecord, HistoryRecord, InboxRecord, OutboxRow

from ._model import EntryKind, TimelineEntry
from ._redact import parse_json, tokens_in, trace_id_of

_SOURCE_ORDER = {"saga": 0, "handoff": 1, "outbox": 2, "inbox": 3, "errors": 4,
                 "stepfunctions": 5, "reviews": 6, "audit": 7}
DECISIONS = frozenset({"approve", "reject"})
"""Audited actions the timeline shows through their reviews already."""
MAX_TEXT = 4000
"""Longer texts (reasons, bodies) are clipped in a timeline's details."""


def utc(value: datetime) -> datetime:
    """`value` as an aware UTC datetime (naive means UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def short_type(urn: str) -> str:
    """``urn:message:ns:Name:v1`` → ``Name``."""
    parts = urn.split(":")
    if len(parts) >= 4 and parts[0] == "urn":
        return parts[-2] if parts[-1].startswith("v") and len(parts) >= 5 else parts[-1]
    return urn


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """`text`, cut at `limit` characters with a note of its length."""
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


def compensation_types(model: SagaModel) -> frozenset[str]:
    """The URNs of the messages a saga sends to undo a step (``compensation=``)."""
    found: set[str] = set()
    for _, activity in model.walk():
        compensation = getattr(activity, "compensation", None)
        urn = getattr(compensation, "message_urn", None)
        if isinstance(urn, str):
            found.add(urn)
    return frozenset(found)


def merge(*groups: Iterable[TimelineEntry],
          anchors: dict[int, datetime] | None = None) -> list[TimelineEntry]:
    """All entries in time order; ties keep the saga's view first (its transition, then
    the hand-off, the messages it wrote, who handled them, errors, the supervisor),
    and each source's own order. `anchors` (by ``id(entry)``) sort an entry at another
    time than its own: what a transition wrote is stamped a moment before the
    transition's commit, and is shown after it."""
    anchors = anchors or {}
    keyed = [(anchors.get(id(entry), entry.at), _SOURCE_ORDER[entry.source], g, i, entry)
             for g, group in enumerate(groups) for i, entry in enumerate(group)]
    keyed.sort(key=lambda item: (item[0], item[1], item[2], item[3]))
    return [item[4] for item in keyed]


def history_entries(history: Sequence[HistoryRecord]) -> list[TimelineEntry]:
    """The saga's transitions, each naming the message it received."""
    entries = []
    for record in history:
        moved = record.from_state != record.to_state
        kind: EntryKind = "transition"
        if "compensat" in record.to_state.lower() and moved:
            kind = "compensation"
        elif not moved and ("retry" in record.event.lower() or "fail" in record.event.lower()):
            kind = "retry"
        elif record.message_type == SUPERVISION_COMPLETED_URN:
            kind = "callback"
        elif record.message_type == SUPERVISION_STARTED_URN:
            kind = "handoff"
        arrow = f"{record.from_state} → {record.to_state}" if moved \
            else f"stayed in {record.to_state}"
        details: dict[str, Any] = {
            "sagaType": record.saga_type, "event": record.event,
            "fromState": record.from_state, "toState": record.to_state,
            "messageId": record.message_id, "messageType": record.message_type}
        if record.detail:
            details["detail"] = record.detail
        entries.append(TimelineEntry(
            kind=kind, at=utc(record.at), source="saga", details=details,
            summary=f"received {short_type(record.message_type)}: {arrow}"))
    return entries


def _outbox_trace(body: Any) -> str | None:
    """The trace id of an outbox body: an envelope's traceparent header, or an
    EventBridge entry's detail."""
    if not isinstance(body, dict):
        return None
    headers = body.get("headers") if "messageType" in body else None
    trace = trace_id_of(headers.get("traceparent")) if isinstance(headers, dict) else None
    if trace is None:
        detail = body.get("Detail") or body.get("detail")
        detail = parse_json(detail) if isinstance(detail, str) else detail
        if isinstance(detail, dict):
            trace = trace_id_of(detail.get("traceparent"))
    return trace


def _outbox_verb(first: OutboxRow, group: Sequence[OutboxRow], scheduled: bool,
                 compensations: frozenset[str]) -> tuple[EntryKind, str]:
    """What a message was, by its outbox kind (a sink's constant) and its rows."""
    name = short_type(first.message_type)
    if first.message_type in compensations:
        return "compensation", f"sent compensation {name} to"
    if first.kind == EVENTBRIDGE:
        bridge_contract = first.message_type.startswith(f"urn:message:{MESSAGE_NAMESPACE}:")
        return ("handoff" if bridge_contract else "published"), f"put {name} on the bus"
    if first.kind == TASK_ANSWER:
        return "callback", f"answered the supervisor ({name})"
    if first.kind == UNROUTED_KIND or len(group) > 1:
        return "published", f"published {name} to"
    if first.kind == SEND_KIND:
        return ("scheduled", f"scheduled {name} for") if scheduled else ("sent", f"sent {name} to")
    return "sent", f"sent {name} through {first.kind} to"


def outbox_entries(rows: Sequence[OutboxRow], *, compensations: frozenset[str] = frozenset(),
                   handled: Mapping[str, Sequence[InboxRecord]] | None = None,
                   ) -> tuple[list[TimelineEntry], set[str], set[str]]:
    """What the saga (and its services) wrote to the outbox: one entry per message
    (a publish to several queues is one entry), plus one ``received`` entry per
    consumer that handled it. Also returns the trace ids and task tokens seen."""
    handled = handled or {}
    traces: set[str] = set()
    tokens: set[str] = set()
    by_message: dict[str, list[OutboxRow]] = {}
    for row in rows:
        by_message.setdefault(row.message_id, []).append(row)
    entries: list[TimelineEntry] = []
    for message_id, group in by_message.items():
        first = group[0]
        body = parse_json(first.body)
        tokens |= tokens_in(body)
        envelope = body if isinstance(body, dict) and "messageType" in body else None
        trace = _outbox_trace(body)
        if trace:
            traces.add(trace)
        destinations = [row.destination for row in group if row.destination]
        name = short_type(first.message_type)
        created = utc(first.created_at or first.deliver_at)
        scheduled = any(utc(r.deliver_at) > created.replace(microsecond=0) and
                        (utc(r.deliver_at) - created).total_seconds() > 1 for r in group)
        attempts = max(r.attempts for r in group)
        failed = any(r.failed for r in group)
        kind, verb = _outbox_verb(first, group, scheduled, compensations)
        where = ", ".join(d.rsplit("/", 1)[-1] for d in destinations) or "(no subscriber)"
        summary = verb if verb.endswith(("bus", ")")) else f"{verb} {where}"
        if scheduled:
            summary += f" at {utc(first.deliver_at).isoformat(timespec='seconds')}"
        if failed:
            summary += " — FAILED"
        elif attempts > 1:
            summary += f" (sent after {attempts} attempts)"
        elif all(r.dispatched_at is None for r in group) and first.kind != UNROUTED_KIND:
            summary += " (not sent yet)"
        details: dict[str, Any] = {
            "messageId": message_id, "messageType": first.message_type, "kind": first.kind,
            "destinations": destinations, "attempts": attempts, "failed": failed,
            "deliverAt": utc(first.deliver_at).isoformat(),
            "dispatchedAt": next((utc(r.dispatched_at).isoformat() for r in group
                                  if r.dispatched_at), None),
            "lastError": next((r.last_error for r in group if r.last_error), None),
            "traceId": trace,
            "causationId": (envelope or {}).get("causationId"),
            "message": (envelope or {}).get("message") if envelope else body}
        if attempts > 1 and kind in ("sent", "published", "scheduled"):
            details["retried"] = attempts - 1
        entries.append(TimelineEntry(kind=kind, at=created, summary=summary, details=details,
                                     source="outbox"))
        for record in handled.get(message_id, ()):
            entries.append(TimelineEntry(
                kind="received", at=utc(record.processed_at), source="inbox",
                summary=f"{record.consumer} handled {name}",
                details={"messageId": message_id, "messageType": first.message_type,
                         "consumer": record.consumer}))
    return entries, traces, tokens


def error_entries(records: Sequence[ErrorRecord]) -> tuple[list[TimelineEntry], set[str]]:
    """The error store's entries, and the trace ids of their headers."""
    traces: set[str] = set()
    entries = []
    for record in records:
        trace = trace_id_of(record.headers.get("traceparent"))
        if trace:
            traces.add(trace)
        name = short_type(record.message_type or "") or "a message"
        entries.append(TimelineEntry(
            kind="error", at=utc(record.at), source="errors",
            summary=f"{record.endpoint} could not handle {name}: {record.error_type}: "
                    f"{clip(record.reason, 300)}",
            details={"errorId": record.id, "endpoint": record.endpoint,
                     "errorType": record.error_type,
                     "reason": clip(record.reason), "messageId": record.message_id,
                     "messageType": record.message_type, "body": clip(record.body),
                     "traceId": trace}))
    return entries, traces


def audit_entries(entries: Sequence[AuditEntry]) -> list[TimelineEntry]:
    """What people did to the order (the audit log: redrives, resumes, cancels, …),
    but the review decisions, which the reviews show."""
    found = []
    for entry in entries:
        if entry.action in DECISIONS:
            continue
        why = f" — {clip(entry.reason, 300)}" if entry.reason else ""
        found.append(TimelineEntry(
            kind="operator", at=utc(entry.at), source="audit",
            summary=f"{entry.actor}: {entry.action} {entry.target}: {entry.outcome}{why}",
            details={"auditId": entry.id, "actor": entry.actor, "action": entry.action,
                     "target": entry.target, "outcome": entry.outcome,
                     "reason": entry.reason, "comment": entry.comment,
                     "detail": entry.detail}))
    return found


def handoff_entries(handoffs: Sequence[HandoffRecord]) -> list[TimelineEntry]:
    """Each hand-off: requested, started (its execution), and its outcome."""
    entries = []
    for record in handoffs:
        base = {"handoffId": record.handoff_id, "workflow": record.workflow,
                "executionArn": record.execution_arn}
        entries.append(TimelineEntry(
            kind="handoff", at=utc(record.requested_at), source="handoff",
            summary=f"handed off to {record.workflow}: {record.reason}",
            details={**base, "reason": record.reason, "requested": True}))
        if record.started_at is not None:
            name = (record.execution_arn or "").rsplit(":", 1)[-1]
            entries.append(TimelineEntry(
                kind="handoff", at=utc(record.started_at), source="handoff",
                summary=f"{record.workflow} started (execution {name})", details=base))
        if record.completed_at is not None and record.outcome is not None:
            who = (record.result or {}).get("reviewer")
            human = record.workflow == "ManualReview" and record.outcome in (
                "approved", "rejected")
            entries.append(TimelineEntry(
                kind="decision" if human else "callback", at=utc(record.completed_at),
                source="handoff",
                summary=f"{record.workflow} outcome: {record.outcome}"
                        + (f" (by {who})" if who else ""),
                details={**base, "outcome": record.outcome, "result": record.result}))
    return entries


def review_entries(reviews: Sequence[Review]) -> list[TimelineEntry]:
    """The reviews raised for the order and what reviewers did with them."""
    entries = []
    for review in reviews:
        label = "escalated review" if review.escalated else "review"
        base = {"reviewId": review.id, "handoffId": review.handoff_id,
                "executionArn": review.execution_arn, "escalated": review.escalated}
        entries.append(TimelineEntry(
            kind="handoff", at=utc(review.created_at), source="reviews",
            summary=f"{label} waiting for a person: {review.reason}", details=base))
        if review.decided_at is not None and review.status in ("approved", "rejected",
                                                               "expired", "superseded"):
            kind: EntryKind = "decision" if review.status in ("approved", "rejected") \
                else "supervisor"
            by = f" by {review.decided_by}" if review.decided_by else ""
            why = f" ({review.decision_reason})" if review.decision_reason else ""
            note = f": {review.comment}" if review.comment else ""
            entries.append(TimelineEntry(
                kind=kind, at=utc(review.decided_at), source="reviews",
                summary=f"{label} {review.status}{by}{why}{note}",
                details={**base, "status": review.status, "decidedBy": review.decided_by,
                         "reason": review.decision_reason, "comment": review.comment}))
    return entries
