"""The per-order timeline: "where is this order, and why?" in one list.

It merges, in time order, everything stepsaga knows about one saga instance:

- the saga's transitions (``saga_history``), each naming the message it received;
- the messages it sent, published and scheduled (``outbox`` rows by correlation id),
  with their dispatch, retries and failures, and who handled them (``inbox``);
- the errors (``message_errors`` by correlation id);
- its supervision hand-offs (the :class:`bridge._handoffs.HandoffRecord` list kept in
  the instance data), the reviews stored for it (``review_tasks``), and each supervisor
  execution's history (Step Functions ``GetExecutionHistory``).

Each item is a :class:`TimelineEntry` (``kind``, ``at``, ``summary``, ``details``). Task
tokens never appear in a timeline: keys named like a task token are masked and every
known token is replaced wherever it shows up. The ops console and ``stepsaga orders
show`` both render :func:`build_timeline`'s result::

    db = SagaDatabase.open("sqlite+aiosqlite:///stepsaga.db")
    timeline = await build_timeline(db, "order-42", sfn=StepFunctions())
    for entry in timeline.entries:
        print(entry.at, entry.kind, entry.summary)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge._handoffs import HandoffRecord, handoffs_of
from bridge.contracts import (
    REDACTED,
    REVIEW_REJECTED_ERROR,
    SUPERVISION_COMPLETED_URN,
    SUPERVISION_STARTED_URN,
)
from bridge.reviews import Review, ReviewStore, StepFunctions, execution_console_url
from core_saga import AwsConfig, SagaModel
from core_saga.persistence import (
    AsyncpgStore,
    ErrorRecord,
    HistoryRecord,
    InstanceRecord,
    OutboxRow,
    SagaStore,
    SqlStore,
)
from core_saga.persistence._schema import errors, inbox, outbox, saga_history, saga_instances

EntryKind = Literal["transition", "retry", "compensation", "sent", "published", "scheduled",
                    "received", "error", "handoff", "decision", "callback", "supervisor"]
EntrySource = Literal["saga", "outbox", "inbox", "errors", "handoff", "reviews",
                      "stepfunctions"]
ENTRY_KINDS: tuple[str, ...] = ("transition", "retry", "compensation", "sent", "published",
                                "scheduled", "received", "error", "handoff", "decision",
                                "callback", "supervisor")

_TOKEN_KEY = re.compile(r"^(task_?token|TaskToken)$", re.IGNORECASE)
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_SOURCE_ORDER = {"saga": 0, "handoff": 1, "outbox": 2, "inbox": 3, "errors": 4,
                 "stepfunctions": 5, "reviews": 6}
_MAX_TEXT = 4000


class TimelineEntry(BaseModel):
    """One thing that happened to an order."""

    model_config = ConfigDict(frozen=True)

    kind: EntryKind
    at: datetime
    summary: str
    details: dict[str, Any] = Field(default_factory=dict)
    source: EntrySource


class ExecutionLink(BaseModel):
    """A supervisor execution of the order and where to look at it."""

    handoff_id: str | None
    workflow: str | None
    execution_arn: str
    console_url: str | None = None
    """The AWS console page (None on the local emulator)."""
    describe: dict[str, Any] | None = None
    """On the local emulator: the DescribeExecution answer (task tokens masked)."""
    status: str | None = None
    error: str | None = None
    """Why the execution could not be read, if it could not."""


class Timeline(BaseModel):
    """An order's state and everything that happened to it, oldest first."""

    saga_type: str
    correlation_id: str
    state: str
    version: int | None
    created_at: datetime | None
    updated_at: datetime | None
    finished: bool
    """True when the instance row is gone (a saga removed when it completed) and the
    state comes from its history."""
    data: dict[str, Any]
    handoffs: list[dict[str, Any]]
    entries: list[TimelineEntry]
    executions: list[ExecutionLink]
    trace_ids: list[str]
    reviews: list[dict[str, Any]]


# -- reading the database ---------------------------------------------------------------------

def engine_for(store_or_url: SagaStore | str, *, schema: str | None = None
               ) -> tuple[AsyncEngine, SqlStore | None]:
    """A SQLAlchemy engine on the database of a store (or a URL), and the SqlStore made
    for it that the caller must close (None when the given store's engine is reused)."""
    if isinstance(store_or_url, SqlStore):
        return store_or_url.engine, None
    if isinstance(store_or_url, AsyncpgStore):
        made = SqlStore.from_url("postgresql+asyncpg://" + store_or_url.dsn.partition("://")[2],
                                 schema=store_or_url.schema, pool_size=2)
        return made.engine, made
    if isinstance(store_or_url, str):
        url = store_or_url
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                url = "postgresql+asyncpg://" + url[len(plain):]
        if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(f"unsupported database URL {store_or_url!r}: use "
                             "sqlite+aiosqlite:// or postgresql://")
        made = SqlStore.from_url(url, schema=schema, pool_size=5)
        return made.engine, made
    raise TypeError(f"the timeline needs a SQL database, not a {type(store_or_url).__name__}")


def _json(text: str | bytes | None) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text.decode(errors="replace") if isinstance(text, bytes) else text


class SagaDatabase:
    """Reads the engine's tables (SQLite or PostgreSQL, through SQLAlchemy async): the
    instances of every saga type, their history, outbox rows, inbox and errors."""

    def __init__(self, engine: AsyncEngine, *, owned: SqlStore | None = None) -> None:
        self.engine = engine
        self._owned = owned

    @classmethod
    def open(cls, store_or_url: SagaStore | str, *, schema: str | None = None
             ) -> SagaDatabase:
        """On a SqlStore's engine, an AsyncpgStore's database, or a database URL
        (``sqlite+aiosqlite:///…``, ``postgresql://…``)."""
        engine, owned = engine_for(store_or_url, schema=schema)
        return cls(engine, owned=owned)

    async def close(self) -> None:
        if self._owned is not None:
            await self._owned.close()

    @staticmethod
    def _instance(row: Any) -> InstanceRecord:
        return InstanceRecord(saga_type=row.saga_type, correlation_id=row.correlation_id,
                              state=row.state, version=row.version,
                              data=orjson.loads(row.data), created_at=row.created_at,
                              updated_at=row.updated_at)

    async def instances(self, correlation_id: str) -> list[InstanceRecord]:
        """The live instances with this correlation id (one per saga type)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(saga_instances).where(
                saga_instances.c.correlation_id == correlation_id)
                .order_by(saga_instances.c.saga_type))).all()
        return [self._instance(row) for row in rows]

    async def list_instances(self, *, saga_type: str | None = None, state: str | None = None,
                             updated_before: datetime | None = None,
                             created_before: datetime | None = None,
                             created_after: datetime | None = None,
                             limit: int = 100, offset: int = 0) -> list[InstanceRecord]:
        """Instances, the longest idle first, filtered by type, state and times."""
        query = select(saga_instances)
        if saga_type is not None:
            query = query.where(saga_instances.c.saga_type == saga_type)
        if state is not None:
            query = query.where(saga_instances.c.state == state)
        if updated_before is not None:
            query = query.where(saga_instances.c.updated_at < updated_before)
        if created_before is not None:
            query = query.where(saga_instances.c.created_at < created_before)
        if created_after is not None:
            query = query.where(saga_instances.c.created_at >= created_after)
        query = query.order_by(saga_instances.c.updated_at, saga_instances.c.correlation_id
                               ).limit(limit).offset(offset)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [self._instance(row) for row in rows]

    async def state_counts(self) -> list[tuple[str, str, int]]:
        """(saga type, state, how many) for every state that has instances."""
        query = (select(saga_instances.c.saga_type, saga_instances.c.state, func.count())
                 .group_by(saga_instances.c.saga_type, saga_instances.c.state)
                 .order_by(saga_instances.c.saga_type, saga_instances.c.state))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [(row[0], row[1], int(row[2])) for row in rows]

    async def history(self, correlation_id: str, saga_type: str | None = None
                      ) -> list[HistoryRecord]:
        """The applied events of the instance(s), oldest first."""
        query = select(saga_history).where(saga_history.c.correlation_id == correlation_id)
        if saga_type is not None:
            query = query.where(saga_history.c.saga_type == saga_type)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(saga_history.c.id))).all()
        return [HistoryRecord(saga_type=row.saga_type, correlation_id=row.correlation_id,
                              event=row.event, from_state=row.from_state,
                              to_state=row.to_state, message_id=row.message_id,
                              message_type=row.message_type, at=row.at,
                              detail=_json(row.detail), id=row.id) for row in rows]

    async def outbox_for(self, correlation_id: str) -> list[OutboxRow]:
        """Every outbox row of the conversation (sent or not), oldest first."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(outbox).where(
                outbox.c.correlation_id == correlation_id).order_by(outbox.c.id))).all()
        return [OutboxRow(id=row.id, message_id=row.message_id, kind=row.kind,
                          destination=row.destination, message_type=row.message_type,
                          correlation_id=row.correlation_id, body=row.body.encode(),
                          deliver_at=row.deliver_at, attempts=row.attempts,
                          created_at=row.created_at, dispatched_at=row.dispatched_at,
                          last_error=row.last_error, failed=bool(row.failed))
                for row in rows]

    async def errors_for(self, correlation_id: str) -> list[ErrorRecord]:
        """The error store's entries of the order, oldest first."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(errors).where(
                errors.c.correlation_id == correlation_id).order_by(errors.c.id))).all()
        found: list[ErrorRecord] = []
        for row in rows:
            headers = _json(row.headers)
            found.append(ErrorRecord(endpoint=row.endpoint, error_type=row.error_type,
                                     reason=row.reason, body=row.body, at=row.at,
                                     message_id=row.message_id,
                                     message_type=row.message_type,
                                     correlation_id=row.correlation_id,
                                     headers=headers if isinstance(headers, dict) else {},
                                     id=row.id))
        return found

    async def handled(self, message_ids: Iterable[str]) -> dict[str, list[tuple[str, datetime]]]:
        """For each message id, the consumers whose inbox has it and when."""
        ids = sorted(set(message_ids))
        found: dict[str, list[tuple[str, datetime]]] = {}
        async with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                rows = (await conn.execute(select(inbox).where(
                    inbox.c.message_id.in_(ids[start:start + 500])))).all()
                for row in rows:
                    found.setdefault(row.message_id, []).append(
                        (row.consumer, row.processed_at))
        return found


# -- helpers --------------------------------------------------------------------------------

def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a W3C ``traceparent`` header (None if it is not one)."""
    if not traceparent:
        return None
    match = _TRACEPARENT.match(traceparent.strip())
    return match.group(1) if match and match.group(1) != "0" * 32 else None


def redact(value: Any, tokens: Iterable[str] = ()) -> Any:
    """`value` (JSON-like) with every task token masked: the values of keys named like a
    task token, and any of `tokens` inside any string (JSON text included)."""
    known = sorted({t for t in tokens if t}, key=len, reverse=True)

    def walk(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: (REDACTED if isinstance(k, str) and _TOKEN_KEY.match(k) and v
                        else walk(v)) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        if isinstance(item, str):
            for token in known:
                if token in item:
                    item = item.replace(token, REDACTED)
            if item[:1] in "{[" and "oken" in item:
                parsed = _json(item)
                if isinstance(parsed, dict | list):
                    return orjson.dumps(walk(parsed)).decode()
            return item
        return item

    return walk(value)


def tokens_in(value: Any) -> set[str]:
    """The task tokens found under token-named keys anywhere in `value` (JSON-like;
    JSON text is looked into)."""
    found: set[str] = set()

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and _TOKEN_KEY.match(key) and isinstance(child, str):
                    found.add(child)
                else:
                    walk(child)
        elif isinstance(item, list | tuple):
            for child in item:
                walk(child)
        elif isinstance(item, str) and item[:1] in "{[" and "oken" in item:
            parsed = _json(item)
            if isinstance(parsed, dict | list):
                walk(parsed)

    walk(value)
    return found


def compensation_types(model: SagaModel) -> frozenset[str]:
    """The URNs of the messages a saga sends to undo a step (``compensation=``)."""
    found: set[str] = set()

    def walk(activities: Iterable[Any]) -> None:
        for activity in activities:
            compensation = getattr(activity, "compensation", None)
            urn = getattr(compensation, "message_urn", None)
            if isinstance(urn, str):
                found.add(urn)
            for nested in ("then", "otherwise", "activities"):
                children = getattr(activity, nested, None)
                if isinstance(children, tuple | list):
                    walk(children)

    for behaviors in model.behaviors.values():
        for behavior in behaviors:
            walk(behavior.activities)
    return frozenset(found)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _short_type(urn: str) -> str:
    """``urn:message:ns:Name:v1`` → ``Name``."""
    parts = urn.split(":")
    if len(parts) >= 4 and parts[0] == "urn":
        return parts[-2] if parts[-1].startswith("v") and len(parts) >= 5 else parts[-1]
    return urn


def _clip(text: str, limit: int = _MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


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


# -- the entries of each source ----------------------------------------------------------------

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
            kind=kind, at=_utc(record.at), source="saga", details=details,
            summary=f"received {_short_type(record.message_type)}: {arrow}"))
    return entries


def outbox_entries(rows: Sequence[OutboxRow], *, compensations: frozenset[str] = frozenset(),
                   handled: dict[str, list[tuple[str, datetime]]] | None = None,
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
        body = _json(first.body)
        tokens |= tokens_in(body)
        envelope = body if isinstance(body, dict) and "messageType" in body else None
        headers = (envelope or {}).get("headers") or {}
        trace = trace_id_of(headers.get("traceparent") if isinstance(headers, dict) else None)
        if trace is None and isinstance(body, dict):
            detail = body.get("Detail") or body.get("detail")
            detail = _json(detail) if isinstance(detail, str) else detail
            if isinstance(detail, dict):
                trace = trace_id_of(detail.get("traceparent"))
        if trace:
            traces.add(trace)
        destinations = [row.destination for row in group if row.destination]
        name = _short_type(first.message_type)
        created = _utc(first.created_at or first.deliver_at)
        scheduled = any(_utc(r.deliver_at) > created.replace(microsecond=0) and
                        (_utc(r.deliver_at) - created).total_seconds() > 1 for r in group)
        attempts = max(r.attempts for r in group)
        failed = any(r.failed for r in group)
        kind: EntryKind
        lowered = first.kind.lower()
        if first.message_type in compensations:
            kind, verb = "compensation", f"sent compensation {name} to"
        elif "event" in lowered or "bridge" in lowered:
            kind = "handoff" if "Supervision" in first.message_type else "published"
            verb = f"put {name} on the bus"
        elif any(word in lowered for word in ("task", "sfn", "states", "callback")):
            kind, verb = "callback", f"answered the supervisor ({name})"
        elif first.kind == "publish" or len(group) > 1:
            kind, verb = "published", f"published {name} to"
        elif scheduled:
            kind, verb = "scheduled", f"scheduled {name} for"
        else:
            kind, verb = "sent", f"sent {name} to"
        where = ", ".join(d.rsplit("/", 1)[-1] for d in destinations) or "(no subscriber)"
        summary = verb if verb.endswith(("bus", ")")) else f"{verb} {where}"
        if scheduled:
            summary += f" at {_utc(first.deliver_at).isoformat(timespec='seconds')}"
        if failed:
            summary += " — FAILED"
        elif attempts > 1:
            summary += f" (sent after {attempts} attempts)"
        elif all(r.dispatched_at is None for r in group):
            summary += " (not sent yet)"
        details: dict[str, Any] = {
            "messageId": message_id, "messageType": first.message_type, "kind": first.kind,
            "destinations": destinations, "attempts": attempts, "failed": failed,
            "deliverAt": _utc(first.deliver_at).isoformat(),
            "dispatchedAt": next((_utc(r.dispatched_at).isoformat() for r in group
                                  if r.dispatched_at), None),
            "lastError": next((r.last_error for r in group if r.last_error), None),
            "traceId": trace,
            "causationId": (envelope or {}).get("causationId"),
            "message": (envelope or {}).get("message") if envelope else body}
        if attempts > 1 and kind in ("sent", "published", "scheduled"):
            details["retried"] = attempts - 1
        entries.append(TimelineEntry(kind=kind, at=created, summary=summary, details=details,
                                     source="outbox"))
        for consumer, at in handled.get(message_id, ()):
            entries.append(TimelineEntry(
                kind="received", at=_utc(at), source="inbox",
                summary=f"{consumer} handled {name}",
                details={"messageId": message_id, "messageType": first.message_type,
                         "consumer": consumer}))
    return entries, traces, tokens


def error_entries(records: Sequence[ErrorRecord]) -> tuple[list[TimelineEntry], set[str]]:
    """The error store's entries, and the trace ids of their headers."""
    traces: set[str] = set()
    entries = []
    for record in records:
        trace = trace_id_of(record.headers.get("traceparent"))
        if trace:
            traces.add(trace)
        name = _short_type(record.message_type or "") or "a message"
        entries.append(TimelineEntry(
            kind="error", at=_utc(record.at), source="errors",
            summary=f"{record.endpoint} could not handle {name}: {record.error_type}: "
                    f"{_clip(record.reason, 300)}",
            details={"endpoint": record.endpoint, "errorType": record.error_type,
                     "reason": _clip(record.reason), "messageId": record.message_id,
                     "messageType": record.message_type, "body": _clip(record.body),
                     "traceId": trace}))
    return entries, traces


def handoff_entries(handoffs: Sequence[HandoffRecord]) -> list[TimelineEntry]:
    """Each hand-off: requested, started (its execution), and its outcome."""
    entries = []
    for record in handoffs:
        base = {"handoffId": record.handoff_id, "workflow": record.workflow,
                "executionArn": record.execution_arn}
        entries.append(TimelineEntry(
            kind="handoff", at=_utc(record.requested_at), source="handoff",
            summary=f"handed off to {record.workflow}: {record.reason}",
            details={**base, "reason": record.reason}))
        if record.started_at is not None:
            name = (record.execution_arn or "").rsplit(":", 1)[-1]
            entries.append(TimelineEntry(
                kind="handoff", at=_utc(record.started_at), source="handoff",
                summary=f"{record.workflow} started (execution {name})", details=base))
        if record.completed_at is not None and record.outcome is not None:
            who = (record.result or {}).get("reviewer")
            human = record.workflow == "ManualReview" and record.outcome in (
                "approved", "rejected")
            entries.append(TimelineEntry(
                kind="decision" if human else "callback", at=_utc(record.completed_at),
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
            kind="handoff", at=_utc(review.created_at), source="reviews",
            summary=f"{label} waiting for a person: {review.reason}", details=base))
        if review.decided_at is not None and review.status in ("approved", "rejected",
                                                               "expired", "superseded"):
            kind: EntryKind = "decision" if review.status in ("approved", "rejected") \
                else "supervisor"
            by = f" by {review.decided_by}" if review.decided_by else ""
            note = f": {review.comment}" if review.comment else ""
            entries.append(TimelineEntry(
                kind=kind, at=_utc(review.decided_at), source="reviews",
                summary=f"{label} {review.status}{by}{note}",
                details={**base, "status": review.status, "decidedBy": review.decided_by,
                         "comment": review.comment}))
    return entries


_REVIEW_STATES = ("AwaitReview", "AwaitEscalatedReview")
_DELIVERY_STATES = ("DeliverOutcome",)


def execution_entries(execution_arn: str, events: Sequence[dict[str, Any]]
                      ) -> tuple[list[TimelineEntry], set[str]]:
    """A Step Functions execution's history as timeline entries (state entries, task
    answers, timeouts, the end), and the task tokens its parameters carried."""
    tokens: set[str] = set()
    entries: list[TimelineEntry] = []
    name = execution_arn.rsplit(":", 1)[-1]
    state = ""
    for event in events:
        kind: EntryKind = "supervisor"
        etype = str(event.get("type", ""))
        at = event.get("timestamp")
        if not isinstance(at, datetime):
            continue
        details: dict[str, Any] = {"executionArn": execution_arn, "eventId": event.get("id"),
                                   "type": etype}
        for key, value in event.items():
            if key.endswith("EventDetails") and isinstance(value, dict):
                tokens |= tokens_in(value)
                details["event"] = value
        info = details.get("event") or {}
        if etype.endswith("StateEntered"):
            state = str(info.get("name", ""))
            summary = f"{name}: entered {state}"
        elif etype.endswith("StateExited") or etype in ("TaskScheduled", "TaskStarted"):
            continue
        elif etype == "ExecutionStarted":
            summary = f"{name}: execution started"
        elif etype.startswith("Execution"):
            summary = f"{name}: execution {etype[len('Execution'):].lower()}"
            if info.get("error"):
                summary += f" ({info['error']})"
        elif etype == "TaskSubmitted" and state in _REVIEW_STATES:
            summary = f"{name}: review handed to a person ({state})"
        elif etype == "TaskSubmitted" and state in _DELIVERY_STATES:
            summary = f"{name}: outcome delivered to the saga, waiting for its acknowledgement"
            kind = "callback"
        elif etype == "TaskSucceeded" and state in _REVIEW_STATES:
            output = _json(info.get("output"))
            decision = output.get("decision") if isinstance(output, dict) else None
            who = output.get("reviewer") if isinstance(output, dict) else None
            answer = decision if isinstance(decision, str) else repr(output)
            summary = f"{name}: reviewer answered {answer}" + (
                f" (by {who})" if who else "")
            kind = "decision"
        elif etype == "TaskSucceeded" and state in _DELIVERY_STATES:
            summary = f"{name}: the saga acknowledged the outcome (task-token callback)"
            kind = "callback"
        elif etype == "TaskFailed" and state in _REVIEW_STATES \
                and info.get("error") == REVIEW_REJECTED_ERROR:
            summary = f"{name}: reviewer rejected: {info.get('cause') or ''}".rstrip(": ")
            kind = "decision"
        elif etype in ("TaskFailed", "TaskTimedOut"):
            summary = f"{name}: {etype} in {state}: {info.get('error') or ''} " \
                      f"{info.get('cause') or ''}".rstrip()
            kind = "retry" if etype == "TaskFailed" and state in _DELIVERY_STATES \
                else "supervisor"
        elif etype == "TaskSucceeded":
            summary = f"{name}: {state} done"
        else:
            summary = f"{name}: {etype}"
        entries.append(TimelineEntry(kind=kind, at=_utc(at), summary=summary,
                                     details=details, source="stepfunctions"))
    return entries, tokens


# -- putting it together -----------------------------------------------------------------------

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
        elif entry.source == "handoff" and entry.summary.startswith("handed off"):
            later = [t for t in times if entry.at <= t <= entry.at + timedelta(seconds=1)]
            if later:
                anchors[id(entry)] = later[0]
    return anchors


async def build_timeline(db: SagaDatabase, correlation_id: str, *,
                         saga_type: str | None = None, sfn: StepFunctions | None = None,
                         reviews: ReviewStore | None = None,
                         model: SagaModel | None = None,
                         aws: AwsConfig | None = None) -> Timeline | None:
    """The timeline of the order `correlation_id` (of `saga_type`, or the first saga
    type that has it), or None when nothing is known about it.

    `sfn` reads each supervisor execution's history (and, on the emulator, its
    DescribeExecution); without it the Step Functions part is left out. `model` (the
    saga's compiled model) marks its compensations; `reviews` adds the stored reviews.
    """
    aws = aws or (sfn.config if sfn is not None else AwsConfig.from_env())
    live = await db.instances(correlation_id)
    if saga_type is not None:
        live = [r for r in live if r.saga_type == saga_type]
    history = await db.history(correlation_id, saga_type)
    record = live[0] if live else None
    if record is None and not history:
        return None
    kind_of = record.saga_type if record else history[-1].saga_type
    history = [h for h in history if h.saga_type == kind_of]
    rows = await db.outbox_for(correlation_id)
    handled = await db.handled(row.message_id for row in rows)
    review_list, review_tokens = await _safe_reviews(reviews, correlation_id)
    data = record.data if record else {}
    handoffs = handoffs_of(data)
    compensations = compensation_types(model) if model is not None else frozenset()

    sent, traces, tokens = outbox_entries(rows, compensations=compensations, handled=handled)
    failures, error_traces = error_entries(await db.errors_for(correlation_id))
    traces |= error_traces
    tokens |= set(review_tokens) | tokens_in(data)

    executions: list[ExecutionLink] = []
    supervisor: list[TimelineEntry] = []
    arns: dict[str, tuple[str | None, str | None]] = {}
    for handoff in handoffs:
        if handoff.execution_arn:
            arns[handoff.execution_arn] = (handoff.handoff_id, handoff.workflow)
    for review in review_list:
        arns.setdefault(review.execution_arn, (review.handoff_id, "ManualReview"))
    for arn, (hid, workflow) in arns.items():
        link = ExecutionLink(handoff_id=hid, workflow=workflow, execution_arn=arn,
                             console_url=execution_console_url(aws, arn))
        if sfn is not None:
            try:
                events = await sfn.execution_history(arn)
                found, found_tokens = execution_entries(arn, events)
                supervisor += found
                tokens |= found_tokens
                described = await sfn.describe_execution(arn)
                link.status = str(described.get("status"))
                if aws.local:
                    link.describe = _jsonable(described)
                    tokens |= tokens_in(link.describe)
            except Exception as exc:  # the order's page must render without AWS
                link.error = f"{type(exc).__name__}: {exc}"
        executions.append(link)

    transitions = history_entries(history)
    handed = handoff_entries(handoffs)
    entries = merge(transitions, handed, sent, failures, supervisor,
                    review_entries(review_list),
                    anchors=_anchors(transitions, [*handed, *sent]))
    entries = [TimelineEntry(kind=e.kind, at=e.at, source=e.source,
                             summary=redact(e.summary, tokens),
                             details=redact(_jsonable(e.details), tokens)) for e in entries]
    for link in executions:
        if link.describe is not None:
            link.describe = redact(link.describe, tokens)
    return Timeline(
        saga_type=kind_of, correlation_id=correlation_id,
        state=record.state if record else history[-1].to_state,
        version=record.version if record else None,
        created_at=record.created_at if record else (history[0].at if history else None),
        updated_at=record.updated_at if record else history[-1].at,
        finished=record is None, data=redact(_jsonable(data), tokens),
        handoffs=[redact(_jsonable(h.model_dump(mode="json")), tokens) for h in handoffs],
        entries=entries, executions=executions, trace_ids=sorted(traces),
        reviews=[r.as_dict() for r in review_list])


__all__ = [
    "ENTRY_KINDS",
    "EntryKind",
    "ExecutionLink",
    "SagaDatabase",
    "Timeline",
    "TimelineEntry",
    "build_timeline",
    "compensation_types",
    "error_entries",
    "execution_entries",
    "handoff_entries",
    "history_entries",
    "merge",
    "outbox_entries",
    "redact",
    "review_entries",
    "tokens_in",
    "trace_id_of",
]
