"""Approve and reject: the stored task token answered with SendTaskSuccess or
SendTaskFailure, once."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import orjson

from bridge.contracts import REVIEW_REJECTED_ERROR

from ._aws import StepFunctions, TaskGoneError
from ._store import Review, ReviewStore

if TYPE_CHECKING:
    from bridge.audit import AuditLog

log = logging.getLogger("bridge.reviews")

MAX_REASON = 2000
"""The longest reason or comment kept with a decision."""

Result = Literal["approved", "rejected", "unchanged", "expired", "not_found"]


@dataclass(frozen=True, slots=True)
class DecisionResult:
    """What a click did: `changed` is False when it changed nothing (and `message` says
    why)."""

    result: Result
    changed: bool
    message: str
    review: Review | None

    def as_dict(self) -> dict[str, object]:
        return {"result": self.result, "changed": self.changed, "message": self.message,
                "review": self.review.as_dict() if self.review else None}


class ReviewService:
    """Decides pending reviews through Step Functions; with an `audit` log, every
    decision taken (or refused) is recorded there with the reviewer's name."""

    def __init__(self, store: ReviewStore, sfn: StepFunctions | None = None, *,
                 now: Callable[[], datetime] | None = None,
                 audit: AuditLog | None = None) -> None:
        self.store = store
        self.sfn = sfn or StepFunctions()
        self.audit = audit
        self._now = now or (lambda: datetime.now(UTC))

    async def approve(self, review_id: str, *, reviewer: str,
                      comment: str | None = None) -> DecisionResult:
        """SendTaskSuccess(token, {"decision": "approved", "reviewer", "comment"})."""
        output = orjson.dumps({"decision": "approved", "reviewer": reviewer,
                               "comment": comment}).decode()

        async def send(token: str) -> None:
            await self.sfn.send_task_success(token, output)

        return await self._decide(review_id, "approved", reviewer, comment, None, send)

    async def reject(self, review_id: str, *, reviewer: str, reason: str,
                     comment: str | None = None) -> DecisionResult:
        """SendTaskFailure(token, error="ReviewRejected", cause="rejected by NAME:
        REASON"); `reason` is required and kept apart from the comment."""
        reason = reason.strip()
        if not reason:
            raise ValueError("a rejection needs a reason")
        cause = f"rejected by {reviewer}: {reason}" + (f" ({comment})" if comment else "")

        async def send(token: str) -> None:
            await self.sfn.send_task_failure(token, REVIEW_REJECTED_ERROR, cause[:32_000])

        return await self._decide(review_id, "rejected", reviewer, comment, reason, send)

    async def _decide(self, review_id: str, status: Literal["approved", "rejected"],
                      reviewer: str, comment: str | None, reason: str | None,
                      send: Callable[[str], Awaitable[None]]) -> DecisionResult:
        comment = comment[:MAX_REASON] if comment else None
        reason = reason[:MAX_REASON] if reason else None
        action = "approve" if status == "approved" else "reject"
        try:
            result = await self._attempt(review_id, status, reviewer, comment, reason, send)
        except Exception as exc:
            with contextlib.suppress(Exception):  # the first error is the one to raise
                await self._audit(action, review_id, None, reviewer, "failed", reason,
                                  comment, {"error": f"{type(exc).__name__}: {exc}"[:500]})
            raise
        review = result.review
        await self._audit(action, review_id, review.correlation_id if review else None,
                          reviewer, result.result, reason, comment,
                          {"changed": result.changed, "message": result.message})
        return result

    async def _attempt(self, review_id: str, status: Literal["approved", "rejected"],
                       reviewer: str, comment: str | None, reason: str | None,
                       send: Callable[[str], Awaitable[None]]) -> DecisionResult:
        review, token = await self.store.claim(review_id, self._now())
        if review is None:
            return DecisionResult("not_found", False, f"no review {review_id}", None)
        if token is None:
            return DecisionResult("unchanged", False, _why_unchanged(review), review)
        try:
            await send(token)
        except TaskGoneError as gone:
            await self.store.settle(review_id, "expired", self._now(), decided_by=reviewer,
                                    reason=f"the workflow no longer accepts this review "
                                           f"({gone.code})")
            log.info("review %s expired (%s)", review_id, gone.code)
            return DecisionResult(
                "expired", False,
                "this review has expired: the workflow no longer waits for it "
                f"({gone.code}); nothing was decided", await self.store.get(review_id))
        except BaseException:
            await self.store.settle(review_id, "pending", self._now())  # let it be retried
            raise
        await self.store.settle(review_id, status, self._now(), decided_by=reviewer,
                                comment=comment, reason=reason)
        log.info("review %s %s by %s", review_id, status, reviewer)
        return DecisionResult(status, True, f"review {status} by {reviewer}",
                              await self.store.get(review_id))

    async def _audit(self, action: str, review_id: str, correlation_id: str | None,
                     reviewer: str, outcome: str, reason: str | None, comment: str | None,
                     detail: dict[str, object]) -> None:
        if self.audit is None:
            return
        from bridge.audit import AuditEntry

        await self.audit.record(AuditEntry(
            at=self._now(), actor=reviewer, action=action, target=review_id,
            outcome=outcome, correlation_id=correlation_id, reason=reason, comment=comment,
            detail=dict(detail)))


def _why_unchanged(review: Review) -> str:
    if review.status in ("approved", "rejected"):
        when = review.decided_at.isoformat(timespec="seconds") if review.decided_at else "?"
        return (f"already {review.status} by {review.decided_by} at {when}; "
                "nothing changed")
    if review.status == "expired":
        return "this review has expired; nothing changed"
    if review.status == "superseded":
        return "this review was superseded by the escalated review; nothing changed"
    return "a decision on this review is being sent right now; nothing changed"
