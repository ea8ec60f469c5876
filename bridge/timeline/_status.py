"""The order's status in one line: what it waits for, or why it ended, and the action
that fits. The first line of the order page and of ``stepsaga orders show``; the reasons
in full are :func:`bridge.timeline.explain`'s."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bridge._handoffs import HandoffRecord
from bridge._publisher import EVENTBRIDGE
from bridge.errorstore._browse import REDRIVE_ACTION, REDRIVEN, error_target
from bridge.reviews import Review
from core_saga import SagaModel
from core_saga.extension import SEND_KIND
from core_saga.persistence import OutboxRow

from ._entries import clip, short_type, utc
from ._model import Timeline, TimelineEntry
from ._why import _ago, _awaited_events, _when

REASON_KEYS = ("cancel_code", "cancel_reason", "reason")
"""Instance data keys read, in order, for why an order ended."""


def _ended(timeline: Timeline) -> str:
    data = timeline.data
    code = next((str(data[k]) for k in REASON_KEYS if data.get(k)), None)
    detail = data.get("cancel_reason")
    why = f": {code}" if code else ""
    if code and detail and str(detail) != code:
        why += f" ({clip(str(detail), 200)})"
    return f"ended {timeline.state}{why}"


def _open_error(timeline: Timeline) -> TimelineEntry | None:
    """The latest error since the saga's last step that nobody has redriven."""
    steps = [e.at for e in timeline.entries if e.source == "saga"]
    since = steps[-1] if steps else None
    redriven = {e.details.get("target") for e in timeline.entries
                if e.kind == "operator" and e.details.get("action") == REDRIVE_ACTION
                and e.details.get("outcome") == REDRIVEN}
    for entry in reversed(timeline.entries):
        error_id = entry.details.get("errorId")
        if (entry.kind == "error" and (since is None or entry.at >= since)
                and (error_id is None or error_target(error_id) not in redriven)):
            return entry
    return None


def _cancel_in_flight(timeline: Timeline, handled: Mapping[str, object]
                      ) -> TimelineEntry | None:
    """An operator's cancel sent after the saga's last step whose message no consumer
    has handled (the inbox) nor refused (the error store): the saga has not taken it
    yet. A cancel the saga ignored (already compensating) was handled: not in flight."""
    steps = [e.at for e in timeline.entries if e.source == "saga"]
    since = steps[-1] if steps else None
    seen = {e.details.get("messageId") for e in timeline.entries if e.source != "audit"}
    seen |= set(handled)
    for entry in reversed(timeline.entries):
        if (entry.kind == "operator" and entry.details.get("action") == "cancel"
                and entry.details.get("outcome") == "requested"):
            detail = entry.details.get("detail") or {}
            taken = detail.get("messageId") in seen if detail.get("messageId") else False
            return None if taken or (since is not None and entry.at < since) else entry
    return None


def status_line(timeline: Timeline, *, model: SagaModel | None, rows: Sequence[OutboxRow],
                reviews: Sequence[Review], handoffs: Sequence[HandoffRecord],
                now: datetime, handled: Mapping[str, object] | None = None) -> str:
    """One line: why the order ended, or the most telling thing it waits for and, after
    a dash, what to do about it (approve/reject, resume, redrive, retry the hand-off,
    abort its execution). `handled`: the inbox's records by message id (a cancel whose
    message is among them was taken by the saga)."""
    if timeline.finished or (model is not None and timeline.state in model.terminal_states):
        return _ended(timeline)
    cancel = _cancel_in_flight(timeline, handled or {})
    if cancel is not None:
        return (f"cancel requested by {cancel.details.get('actor')} "
                f"{_ago(now, cancel.at)} ago, not yet taken by the saga (in "
                f"{timeline.state}) — look at its queue and Errors")
    for review in reviews:
        if review.status in ("pending", "deciding"):
            return (f"waiting for review since {_ago(now, review.created_at)} — "
                    "approve/reject in Reviews")
    unsent = [r for r in rows if r.dispatched_at is None and r.kind in (SEND_KIND, EVENTBRIDGE)]
    for row in unsent:
        if row.failed:
            return (f"sending {short_type(row.message_type)} failed after {row.attempts} "
                    "attempts — resume")
    for row in unsent:
        if row.attempts:
            return (f"sending {short_type(row.message_type)} retried {row.attempts} times, "
                    f"unsent for {_ago(now, row.created_at or row.deliver_at)} — resume")
    for row in unsent:
        if utc(row.deliver_at) <= now:
            return (f"outbox row {short_type(row.message_type)} unsent for "
                    f"{_ago(now, row.deliver_at)} — resume")
    error = _open_error(timeline)
    if error is not None:
        return f"{clip(error.summary, 200)} — fix the cause, then redrive it from Errors"
    for handoff in handoffs:
        if handoff.outcome is None and handoff.execution_arn is None:
            return (f"hand-off to {handoff.workflow} not started for "
                    f"{_ago(now, handoff.requested_at)} — retry the hand-off, or check its "
                    "EventBridge rule")
    for handoff in handoffs:
        if handoff.outcome is None:
            return (f"waiting for {handoff.workflow} since "
                    f"{_ago(now, handoff.started_at or handoff.requested_at)} — see its "
                    "execution, or abort it")
    timers = sorted((r for r in unsent if utc(r.deliver_at) > now and not r.attempts),
                    key=lambda r: r.deliver_at)
    awaited = _awaited_events(model, timeline.state) if model is not None else []
    if timers:
        first = timers[0]
        # The message the saga waits for comes first: the timer is its deadline.
        name = short_type(first.message_type)
        # Other timers' events are left out: a timer not armed is not waited for.
        others = [a for a in awaited if ".Received" not in a and a != name]
        messages = f"{', '.join(others)} or " if others else ""
        return (f"waiting for {messages}timer {name}, fires at "
                f"{_when(first.deliver_at)} (in {_ago(first.deliver_at, now)}) — resume "
                "fires it now")
    since = f" since {_ago(now, timeline.updated_at)}" if timeline.updated_at else ""
    if awaited:
        return f"in {timeline.state}{since}, waiting for {', '.join(awaited)}"
    return f"in {timeline.state}{since}"
