"""What an operator action answers: its outcome, whether it changed anything, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["resumed", "requested", "unchanged", "not_found", "finished",
                  "unsupported", "failed", "aborted"]


@dataclass(frozen=True, slots=True)
class ActionResult:
    """`outcome` says what came of the action; `changed` is False when nothing changed
    (a repeated action, an unknown or finished order) and `message` says why."""

    outcome: Outcome
    changed: bool
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "changed": self.changed, "message": self.message,
                "detail": self.detail}
