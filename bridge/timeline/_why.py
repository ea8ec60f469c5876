"""Why an order is where it is: what it waits for, and what went wrong on the way.

The operator's first question about a stuck order. The answer is read from what the
timeline already has: reviews waiting for a person, hand-offs whose workflow has not
started or not answered, messages not sent or failed, commands nobody handled or
answered, errors, timers, and the events the saga's model accepts in its state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bridge._handoffs import HandoffRecord
from bridge._publisher import EVENTBRIDGE
from bridge.reviews import Review
from core_saga import OperatorCancel, SagaModel
from core_saga.extension import SEND_KIND
from core_saga.persistence import InboxRecord, OutboxRow

from ._entries import clip, short_type, utc
from ._model import Timeline
from ._redact import parse_json


def _ago(now: datetime, then: datetime) -> str:
    seconds = max(0, int((now - utc(then)).total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"


def _when(at: datetime) -> str:
    return utc(at).strftime("%Y-%m-%d %H:%M:%S UTC")


def _awaited_events(model: SagaModel, state: str) -> list[str]:
    """The events the saga acts on in `state` (not those it ignores, nor the ones every
    state accepts, nor the operator's cancel: that is an action, not what the order
    waits for)."""
    found: list[str] = []
    for (source, event), behaviors in model.behaviors.items():
        if source == state and any(not b.ignore and not b.from_any for b in behaviors):
            declared = model.events.get(event)
            if declared is not None and declared.message_type is OperatorCancel:
                continue
            message = declared.message_type.__name__ if declared is not None else event
            found.append(event if message == event else f"{event} ({message})")
    return sorted(found)


def explain(timeline: Timeline, *, model: SagaModel | None, rows: Sequence[OutboxRow],
            handled: Mapping[str, Sequence[InboxRecord]], reviews: Sequence[Review],
            handoffs: Sequence[HandoffRecord], now: datetime) -> list[str]:
    """One line per reason the order is where it is, the most telling first; empty for
    an order that has ended."""
    final = timeline.finished or (model is not None and timeline.state in model.terminal_states)
    if final:
        return []
    lines: list[str] = []
    for review in reviews:
        if review.status in ("pending", "deciding"):
            deadline = f"; the workflow gives up at {_when(review.deadline)}" \
                if review.deadline else ""
            label = "an escalated review" if review.escalated else "a review"
            lines.append(f"waiting for a person: {label} is pending since "
                         f"{_when(review.created_at)} ({_ago(now, review.created_at)}) — "
                         f"{review.reason}{deadline}")
    links = {link.execution_arn: link for link in timeline.executions}
    for handoff in handoffs:
        if handoff.outcome is not None:
            continue
        if handoff.execution_arn is None:
            lines.append(f"handed off to {handoff.workflow} at {_when(handoff.requested_at)} "
                         f"({_ago(now, handoff.requested_at)} ago) but no execution has "
                         "started: is the EventBridge rule there, and the hand-off sent?")
            continue
        link = links.get(handoff.execution_arn)
        name = handoff.execution_arn.rsplit(":", 1)[-1]
        if link is not None and link.status and link.status != "RUNNING":
            lines.append(f"{handoff.workflow} execution {name} ended {link.status} but its "
                         "outcome has not reached the saga")
        elif not any(r.status in ("pending", "deciding") for r in reviews):
            where = f", in {link.current_state}" if link and link.current_state else ""
            lines.append(f"{handoff.workflow} execution {name} is running{where} (started "
                         f"{_ago(now, handoff.started_at or handoff.requested_at)} ago)")

    last = timeline.entries and [e for e in timeline.entries if e.source == "saga"]
    last_at = last[-1].at if last else None
    last_message = last[-1].details.get("messageId") if last else None
    for row in rows:
        name = short_type(row.message_type)
        where = row.destination.rsplit("/", 1)[-1] or "(no subscriber)"
        if row.failed:
            lines.append(f"sending {name} to {where} FAILED after {row.attempts} attempts: "
                         f"{clip(row.last_error or '?', 300)}")
        elif row.dispatched_at is None and row.kind in (SEND_KIND, EVENTBRIDGE) \
                and utc(row.deliver_at) > now:
            lines.append(f"a timer: {name} is due at {_when(row.deliver_at)}")
        elif row.dispatched_at is None and row.kind in (SEND_KIND, EVENTBRIDGE):
            tried = f" after {row.attempts} attempts ({clip(row.last_error or '', 200)})" \
                if row.attempts else ""
            lines.append(f"{name} to {where} is not sent yet{tried}")
    for row in rows:
        written_by_last = last_message is not None and _caused_by(row, last_message)
        if not written_by_last or row.kind != SEND_KIND or row.dispatched_at is None \
                or row.failed:
            continue
        name = short_type(row.message_type)
        where = row.destination.rsplit("/", 1)[-1]
        consumers = handled.get(row.message_id, ())
        if not consumers:
            lines.append(f"{name} was sent to {where} at {_when(row.dispatched_at)} "
                         f"({_ago(now, row.dispatched_at)} ago); no consumer has handled "
                         "it yet")
        else:
            first = consumers[0]
            lines.append(f"{first.consumer} handled {name} at {_when(first.processed_at)}; "
                         "its answer has not come back")
    for entry in timeline.entries:
        if entry.kind == "error" and (last_at is None or entry.at >= last_at):
            lines.append(entry.summary)
    if model is not None:
        awaited = _awaited_events(model, timeline.state)
        if awaited:
            lines.append(f"in {timeline.state} the saga acts on {', '.join(awaited)}")
    if timeline.updated_at is not None:
        lines.append(f"unchanged since {_when(timeline.updated_at)} "
                     f"({_ago(now, timeline.updated_at)})")
    return lines


def _caused_by(row: OutboxRow, message_id: str) -> bool:
    """Whether `row` was written while handling `message_id` (its envelope's
    causation id)."""
    body = parse_json(row.body)
    return isinstance(body, dict) and body.get("causationId") == message_id
