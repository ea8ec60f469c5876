"""What a saga remembers about its supervision hand-offs, for itself and the console.

A saga whose state subclasses :class:`SupervisedState` keeps one :class:`HandoffRecord`
per hand-off in ``handoffs``: when it was requested, the Step Functions execution that
took it (from ``SupervisionStarted``), and the outcome (from ``SupervisionCompleted``).
The record lives in the saga's instance data, so it is written in the same transaction
as the state change it belongs to; the ops console reads it from there
(:func:`handoffs_of`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

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

    @property
    def pending(self) -> bool:
        """True until the outcome has been applied."""
        return self.outcome is None


class SupervisedState(SagaState):
    """Saga instance data that records its hand-offs (mix into the saga's state)."""

    handoffs: list[HandoffRecord] = []

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
