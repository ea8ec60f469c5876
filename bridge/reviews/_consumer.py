"""The review queue's consumer: keeps every ReviewTask for the console."""

from __future__ import annotations

import logging

from bridge.contracts import ReviewTask
from core_saga import ConsumeContext, Consumer

from ._store import ReviewStore

log = logging.getLogger("bridge.reviews")


class ReviewTaskConsumer(Consumer[ReviewTask]):
    """Stores each ``ReviewTask`` of the ManualReview workflow in ``review_tasks``.

    Host it on the review queue: ``worker.add_consumer(ReviewTaskConsumer(reviews),
    queue="review")``. The row is written in the message's own transaction, with its
    inbox entry, on every store; the write is idempotent too (keyed by hand-off and
    escalation).
    """

    def __init__(self, reviews: ReviewStore) -> None:
        self.reviews = reviews

    async def consume(self, ctx: ConsumeContext[ReviewTask]) -> None:
        task = ctx.message
        review = await self.reviews.record(task, ctx.now, transaction=ctx.transaction)
        # Never the token: the redacted form only.
        log.info("review %s stored for %s (hand-off %s, escalated=%s)", review,
                 task.correlation_id, task.handoff_id, task.escalated)
