"""What a timeline is made of: entries, execution links, and the timeline itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EntryKind = Literal["transition", "retry", "compensation", "sent", "published", "scheduled",
                    "received", "error", "handoff", "decision", "callback", "supervisor",
                    "operator"]
EntrySource = Literal["saga", "outbox", "inbox", "errors", "handoff", "reviews",
                      "stepfunctions", "audit"]
ENTRY_KINDS: tuple[str, ...] = ("transition", "retry", "compensation", "sent", "published",
                                "scheduled", "received", "error", "handoff", "decision",
                                "callback", "supervisor", "operator")


class TimelineEntry(BaseModel):
    """One thing that happened to an order."""

    model_config = ConfigDict(frozen=True)

    kind: EntryKind
    at: datetime
    summary: str
    details: dict[str, Any] = Field(default_factory=dict)
    source: EntrySource
    folded: list[dict[str, Any]] = Field(default_factory=list)
    """Steps folded into this entry (a supervisor's plumbing states: claims, context,
    choices), each ``{"state", "type", "at"}``; shown on demand."""


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
    state_machine_arn: str | None = None
    states_entered: list[str] = Field(default_factory=list)
    """The states the execution entered, in order (its path, for the graph)."""
    current_state: str | None = None
    """The state it is in while it runs (entered, not exited)."""


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
    path: list[str] = Field(default_factory=list)
    """The states the saga went through, in order (from its history)."""
    status: str = ""
    """The order's status in one line: what it waits for or why it ended, and the action
    that fits (see :func:`bridge.timeline.status_line`)."""
    waiting_for: list[str] = Field(default_factory=list)
    """Why the order is where it is: what it waits for, what failed (see
    :func:`bridge.timeline.explain`)."""
