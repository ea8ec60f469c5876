"""The review queue's consumer: keeps every ReviewTask for the console."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.contracts import ReviewTask
from core_saga import ConsumeContext, Consumer

from ._store import ReviewStore

log = logging.getLogger("bridge.reviews")


class ReviewTaskConsumer(Consumer[ReviewTask]):
    """Stores each ``ReviewTask`` of the ManualReview workflow in ``review_tasks``.

    Host it on the review queue: ``worker.add_consumer(ReviewTaskConsumer(reviews),
    queue="review")``. On a SqlStore the row is written in the message's own transaction
    (with its inbox entry); on other stores through the review store's engine — the
    write is idempotent (keyed by hand-off and escalation), so a redelivery is harmless.
    """

    def __init__(self, reviews: ReviewStore) -> None:
        self.reviews = reviews

    async def consume(self, ctx: ConsumeContext[ReviewTask]) -> None:
        task = ctx.message
        conn = getattr(ctx.transaction, "conn", None)
        review = await self.reviews.record(
            task, ctx.now, conn=conn if isinstance(conn, AsyncConnection) else None)
        # Never the token: the redacted form only.
        log.info("review %s stored for %s (hand-off %s, escalated=%s)", review,
                 task.correlation_id, task.handoff_id, task.escalated)
