"""A Step Functions execution's history as timeline entries.

What an operator reads: the execution starting and ending, the states that wait on the
outside world (a person, the saga's acknowledgement, a carrier: task states whose
resource ends in ``.waitForTaskToken``, and Wait states), the answers to them, failures
and timeouts. The plumbing between them (Pass and Choice states, the claim and the
``SupervisionStarted`` report, any task that just succeeds) is folded: each run of it is
one entry listing its steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bridge.contracts import REVIEW_REJECTED_ERROR

from ._entries import utc
from ._model import EntryKind, TimelineEntry
from ._redact import parse_json, tokens_in

_REVIEW_STATES = ("AwaitReview", "AwaitEscalatedReview")
_DELIVERY_STATES = ("DeliverOutcome",)
_WAITING_TYPES = ("WaitStateEntered", "MapStateEntered", "ParallelStateEntered")


@dataclass
class ExecutionPath:
    """Where an execution went: the states it entered in order, and the one it is in."""

    entered: list[str] = field(default_factory=list)
    current: str | None = None


@dataclass
class _Folding:
    """A run of plumbing steps waiting to become one entry."""

    steps: list[dict[str, Any]] = field(default_factory=list)

    def add(self, state: str, kind: str, at: datetime) -> None:
        self.steps.append({"state": state, "type": kind, "at": utc(at).isoformat()})

    def flush(self, name: str, arn: str, entries: list[TimelineEntry]) -> None:
        if not self.steps:
            return
        at = datetime.fromisoformat(self.steps[0]["at"])
        states = " → ".join(step["state"] for step in self.steps)
        entries.append(TimelineEntry(
            kind="supervisor", at=at, source="stepfunctions", folded=self.steps,
            summary=f"{name}: {states}",
            details={"executionArn": arn, "steps": len(self.steps)}))
        self.steps = []


def _details(arn: str, event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    details: dict[str, Any] = {"executionArn": arn, "eventId": event.get("id"),
                               "type": event.get("type")}
    info: dict[str, Any] = {}
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            details["event"] = value
            info = value
    return details, info


def execution_entries(execution_arn: str, events: Sequence[dict[str, Any]]
                      ) -> tuple[list[TimelineEntry], set[str]]:
    """A Step Functions execution's history as timeline entries (see the module), and
    the task tokens its events carried (to redact them everywhere)."""
    entries, tokens, _ = read_execution(execution_arn, events)
    return entries, tokens


def read_execution(execution_arn: str, events: Sequence[dict[str, Any]]
                   ) -> tuple[list[TimelineEntry], set[str], ExecutionPath]:
    """:func:`execution_entries`, and the path the execution took."""
    tokens: set[str] = set()
    entries: list[TimelineEntry] = []
    path = ExecutionPath()
    name = execution_arn.rsplit(":", 1)[-1]
    folding = _Folding()
    state = ""
    entered: tuple[datetime, dict[str, Any]] | None = None  # a task state, not yet shown
    for event in events:
        etype = str(event.get("type", ""))
        at = event.get("timestamp")
        if not isinstance(at, datetime):
            continue
        details, info = _details(execution_arn, event)
        tokens |= tokens_in(info)
        kind: EntryKind = "supervisor"
        if etype.endswith("StateEntered"):
            state = str(info.get("name", ""))
            path.entered.append(state)
            path.current = state
            if etype == "TaskStateEntered":
                entered = (at, details)  # shown once we know whether it waits
                continue
            if etype in _WAITING_TYPES:
                folding.flush(name, execution_arn, entries)
                summary = f"{name}: entered {state}"
            else:
                folding.add(state, etype[: -len("StateEntered")], at)
                continue
        elif etype.endswith("StateExited"):
            if path.current == str(info.get("name", "")):
                path.current = None
            continue
        elif etype == "TaskScheduled":
            waits = str(info.get("resource", "")).endswith(".waitForTaskToken")
            if entered is not None and waits:
                folding.flush(name, execution_arn, entries)
                entries.append(TimelineEntry(
                    kind="supervisor", at=utc(entered[0]), source="stepfunctions",
                    summary=f"{name}: entered {state}", details=entered[1]))
            elif entered is not None:
                folding.add(state, "Task", entered[0])
            entered = None
            continue
        elif etype == "TaskStarted":
            continue
        elif etype == "ExecutionStarted":
            summary = f"{name}: execution started"
        elif etype.startswith("Execution"):
            folding.flush(name, execution_arn, entries)
            summary = f"{name}: execution {etype[len('Execution'):].lower()}"
            if info.get("error"):
                summary += f" ({info['error']})"
            path.current = None
        elif etype == "TaskSubmitted" and state in _REVIEW_STATES:
            summary = f"{name}: review handed to a person ({state})"
        elif etype == "TaskSubmitted" and state in _DELIVERY_STATES:
            summary = f"{name}: outcome delivered to the saga, waiting for its acknowledgement"
            kind = "callback"
        elif etype == "TaskSubmitted":
            continue  # a plain task submitted: part of its folded step
        elif etype == "TaskSucceeded" and state in _REVIEW_STATES:
            output = parse_json(info.get("output"))
            decision = output.get("decision") if isinstance(output, dict) else None
            who = output.get("reviewer") if isinstance(output, dict) else None
            answer = decision if isinstance(decision, str) else repr(output)
            summary = f"{name}: reviewer answered {answer}" + (f" (by {who})" if who else "")
            kind = "decision"
        elif etype == "TaskSucceeded" and state in _DELIVERY_STATES:
            summary = f"{name}: the saga acknowledged the outcome (task-token callback)"
            kind = "callback"
        elif etype == "TaskSucceeded":
            if folding.steps and folding.steps[-1]["state"] == state:
                continue  # the folded step's own success
            summary = f"{name}: {state} done"
        elif etype == "TaskFailed" and state in _REVIEW_STATES \
                and info.get("error") == REVIEW_REJECTED_ERROR:
            summary = f"{name}: reviewer rejected: {info.get('cause') or ''}".rstrip(": ")
            kind = "decision"
        elif etype in ("TaskFailed", "TaskTimedOut"):
            summary = f"{name}: {etype} in {state}: {info.get('error') or ''} " \
                      f"{info.get('cause') or ''}".rstrip()
            kind = "retry" if etype == "TaskFailed" and state in _DELIVERY_STATES \
                else "supervisor"
        else:
            summary = f"{name}: {etype}"
        if kind != "supervisor" or etype.startswith(("Execution", "Task")):
            folding.flush(name, execution_arn, entries)
        entries.append(TimelineEntry(kind=kind, at=utc(at), summary=summary,
                                     details=details, source="stepfunctions"))
    folding.flush(name, execution_arn, entries)
    return entries, tokens, path
