"""What a saga remembers about its supervision hand-offs, for itself and the console.

A saga whose state subclasses :class:`SupervisedState` keeps one :class:`HandoffRecord`
per hand-off in ``handoffs``: when it was requested, the Step Functions execution that
took it (from ``SupervisionStarted``), and the outcome (from ``SupervisionCompleted``).
A record also keeps what the saga needs to keep the hand-off from getting lost: the
request as it was put on the bus (for a re-publish), how often it was published, the
deadline for ``SupervisionStarted``, and, when it will not come back, why
(``lost``). The record lives in the saga's instance data, so it is written in the same transaction
as the state change it belongs to; the ops console reads it from there
(:func:`handoffs_of`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core_saga import SagaState


class HandoffRecord(BaseModel):
    """One hand-off of a saga to a supervisor workflow."""

    model_config = ConfigDict(extra="ignore")

    handoff_id: str
    workflow: str
    """``ManualReview`` or ``SlowShipping``."""
    reason: str
    requested_at: datetime
    execution_arn: str | None = None
    """The Step Functions execution, once ``SupervisionStarted`` arrived."""
    started_at: datetime | None = None
    outcome: str | None = None
    """``approved``, ``rejected``, ``timed_out``, ``shipped`` or ``failed``; None while
    the workflow runs."""
    result: dict[str, Any] | None = None
    completed_at: datetime | None = None
    publishes: int = 1
    """How many times ``SupervisionRequested`` was put on the bus for this hand-off (the
    first publish and each re-publish after a missed deadline)."""
    started_deadline_seconds: float | None = None
    """How long each publish waits for ``SupervisionStarted`` (None: no deadline)."""
    max_publishes: int = 1
    """Publishes before the hand-off is given up as lost (1 + the re-publishes)."""
    waiting_state: str | None = None
    """The state the saga waits in for this hand-off; the deadline and a lost
    supervision act only while the saga is still there."""
    request: dict[str, str] | None = Field(default=None, repr=False)
    """The entry as first put on the bus (``bus``, ``source``, ``detail``): a
    re-publish puts the same hand-off again."""
    lost: str | None = None
    """Why the hand-off will not come back (a ``LostCause``: ``not_started``,
    ``execution_failed``, ``execution_timed_out``, ``execution_aborted``); None while it
    may."""
    lost_detail: str | None = None
    lost_at: datetime | None = None
    execution_status: str | None = None
    """The execution's final status when Step Functions reported one without an
    outcome (FAILED, TIMED_OUT, ABORTED)."""

    @property
    def pending(self) -> bool:
        """True until the outcome has been applied or the hand-off is lost."""
        return self.outcome is None and self.lost is None


class SupervisedState(SagaState):
    """Saga instance data that records its hand-offs (mix into the saga's state)."""

    handoffs: list[HandoffRecord] = []
    supervision_deadline_token: str | None = None
    """The durable timer armed with each publish of the latest hand-off (the
    ``supervision_deadline_schedule`` keeps it here)."""

    def handoff(self, handoff_id: str) -> HandoffRecord | None:
        """The record of `handoff_id`, if this saga made that hand-off."""
        for record in self.handoffs:
            if record.handoff_id == handoff_id:
                return record
        return None

    @property
    def active_handoff(self) -> HandoffRecord | None:
        """The latest hand-off still waiting for its outcome."""
        for record in reversed(self.handoffs):
            if record.pending:
                return record
        return None


def handoffs_of(data: dict[str, Any]) -> list[HandoffRecord]:
    """The hand-off records in a saga instance's persisted data (empty if none)."""
    return [HandoffRecord.model_validate(item) for item in data.get("handoffs") or ()]
