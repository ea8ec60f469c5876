"""Pending manual reviews against real ManualReview executions on the emulator: the
review queue's consumer stores the task, approve and reject answer Step Functions once,
a second click changes nothing, and a token the workflow no longer accepts expires."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bridge.contracts import ReviewTask
from bridge.reviews import (
    ReviewService,
    ReviewStore,
    ReviewTaskConsumer,
    StepFunctions,
    review_id,
    review_tasks,
)
from core_saga import AwsConfig, ConsumeContext, Consumer
from core_saga.emulator import Emulator
from core_saga.persistence import SagaStore
from core_saga.testing import SagaTestHarness
from supervisor_workflows import ManualReviewTimings
from tests.console.support import ReviewRig, await_for, sqlite_url, wait_for

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(180)]


@pytest.fixture
async def rig(emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
              ) -> AsyncIterator[ReviewRig]:
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    made = ReviewRig(emulator, sqlite_url(tmp_path))
    await made.start()
    yield made
    await made.stop()


def service(emulator: Emulator, reviews: ReviewStore) -> ReviewService:
    return ReviewService(reviews, StepFunctions(AwsConfig(region=emulator.region,
                                                          endpoint_url=emulator.endpoint_url)))


async def test_approve_moves_the_execution_on_and_a_second_click_changes_nothing(
        rig: ReviewRig, emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    order = f"o-{uuid.uuid4().hex[:8]}"
    arn, review = await rig.drive_to_review(order)
    assert review.execution_arn == arn
    assert review.escalated is False and review.status == "pending"
    assert review.id == review_id(review.handoff_id, False)
    assert rig.reviews is not None
    async with rig.reviews.store.transaction() as tx:  # the token is stored...
        token = await tx.scalar(select(review_tasks.c.task_token))
    assert token
    assert token not in repr(review) and "task_token" not in review.as_dict()  # ...not shown

    decide = service(emulator, rig.reviews)
    first = await decide.approve(review.id, reviewer="ann", comment="known customer")
    assert (first.result, first.changed) == ("approved", True)
    assert first.review is not None and first.review.decided_by == "ann"

    await await_for(lambda: rig.state_of(order), what="the saga")
    assert await await_for(lambda: _is(rig, order, "Approved"), what="Approved")
    entered = await asyncio.to_thread(wait_for, lambda: (
        "Delivered" in rig.entered(arn) and rig.entered(arn)), what="Delivered")
    assert entered[-4:] == ["CheckDecision", "Approved", "DeliverOutcome", "Delivered"]
    done = await asyncio.to_thread(emulator.wait_for_execution, arn)
    assert done["status"] == "SUCCEEDED"

    again = await decide.approve(review.id, reviewer="bob")
    assert (again.result, again.changed) == ("unchanged", False)
    assert "already approved by ann" in again.message
    also = await decide.reject(review.id, reviewer="bob", reason="too late")
    assert also.changed is False and "already approved" in also.message
    assert token not in caplog.text


async def _is(rig: ReviewRig, order: str, state: str) -> bool:
    return await rig.state_of(order) == state


async def test_reject_sends_task_failure_and_the_saga_is_told(
        rig: ReviewRig, emulator: Emulator) -> None:
    order = f"o-{uuid.uuid4().hex[:8]}"
    arn, review = await rig.drive_to_review(order)
    assert rig.reviews is not None
    decide = service(emulator, rig.reviews)
    result = await decide.reject(review.id, reviewer="ann", reason="stolen card",
                                 comment="the bank called")
    assert (result.result, result.changed) == ("rejected", True)
    assert result.review is not None
    assert (result.review.decision_reason, result.review.comment) == (
        "stolen card", "the bank called")
    assert await await_for(lambda: _is(rig, order, "Rejected"), what="Rejected")
    failed = [e for e in emulator.execution_history(arn) if e["type"] == "TaskFailed"]
    assert failed[0]["taskFailedEventDetails"]["error"] == "ReviewRejected"
    assert failed[0]["taskFailedEventDetails"]["cause"] == (
        "rejected by ann: stolen card (the bank called)")
    again = await decide.reject(review.id, reviewer="ann", reason="again")
    assert again.changed is False and "already rejected by ann" in again.message


async def test_a_token_the_workflow_no_longer_accepts_expires_the_review(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    rig = ReviewRig(emulator, sqlite_url(tmp_path), timings=ManualReviewTimings(
        review_timeout_seconds=2, escalation_timeout_seconds=2, delivery_timeout_seconds=30,
        delivery_max_attempts=1))
    await rig.start()
    try:
        order = f"o-{uuid.uuid4().hex[:8]}"
        arn, first = await rig.drive_to_review(order)
        # Nobody answers: escalated after 2 s, timed out after 2 s more; the saga takes
        # the outcome and the execution ends.
        assert await await_for(lambda: _is(rig, order, "Rejected"), what="timed out")
        done = await asyncio.to_thread(emulator.wait_for_execution, arn)
        assert done["status"] == "SUCCEEDED"
        assert rig.reviews is not None
        by_id = {r.id: r for r in await rig.reviews.list_reviews(status=None)}
        assert by_id[first.id].status == "superseded"
        escalated = by_id[review_id(first.handoff_id, True)]
        assert escalated.status == "pending"

        decide = service(emulator, rig.reviews)
        result = await decide.approve(escalated.id, reviewer="ann")
        assert (result.result, result.changed) == ("expired", False)
        assert "expired" in result.message
        assert result.review is not None and result.review.status == "expired"
        again = await decide.approve(escalated.id, reviewer="ann")
        assert again.changed is False and "expired" in again.message
        superseded = await decide.approve(first.id, reviewer="ann")
        assert superseded.changed is False and "superseded" in superseded.message
    finally:
        await rig.stop()


async def test_an_unknown_review_is_not_found(rig: ReviewRig, emulator: Emulator) -> None:
    assert rig.reviews is not None
    result = await service(emulator, rig.reviews).approve(str(uuid.uuid4()), reviewer="x")
    assert (result.result, result.changed) == ("not_found", False)


async def test_an_escalated_task_supersedes_the_first_and_redelivery_is_harmless(
        sql_store: SagaStore) -> None:
    reviews = ReviewStore.open(sql_store)
    await reviews.create_table()
    now = datetime.now(UTC)
    first = await reviews.record(_task(False, "tok-1"), now)
    assert await reviews.record(_task(False, "tok-1"), now) == first  # redelivered
    assert [r.status for r in await reviews.list_reviews(status=None)] == ["pending"]
    second = await reviews.record(_task(True, "tok-2"), now)
    by_id = {r.id: r for r in await reviews.list_reviews(status=None)}
    assert by_id[first].status == "superseded" and by_id[second].status == "pending"
    assert [r.id for r in await reviews.list_reviews()] == [second]
    await reviews.record(_task(False, "tok-1"), now)  # a late redelivery of the first
    assert by_id[first].status == "superseded"
    assert sorted(await reviews.tokens_for("o-1")) == ["tok-1", "tok-2"]


def _task(escalated: bool, token: str) -> ReviewTask:
    return ReviewTask(handoff_id="h-1", correlation_id="o-1", saga_type="T",
                      reason="big", payload={"orderId": "o-1"}, escalated=escalated,
                      execution_arn="arn:aws:states:us-east-1:123456789012:execution:m:x",
                      task_token=token)


class _CrashAfterTheInsert(Consumer[ReviewTask]):
    """Runs after ReviewTaskConsumer on the same message: a failure before COMMIT."""

    async def consume(self, ctx: ConsumeContext[ReviewTask]) -> None:
        raise RuntimeError("the process died before the commit")


async def test_the_review_is_written_in_the_messages_transaction_on_every_store(
        sql_store: SagaStore) -> None:
    reviews = ReviewStore.open(sql_store)
    await reviews.create_table()
    async with SagaTestHarness(store=sql_store) as h:
        h.add_consumer(ReviewTaskConsumer(reviews), queue="review")
        h.add_consumer(_CrashAfterTheInsert(), queue="review")
        envelope = await h.send("review", _task(False, "tok-crash"))
        assert [queue for queue, _ in h.faults] == ["review"]
    # neither the review nor the message's inbox entry: it will be taken again, whole
    assert await reviews.list_reviews(status=None) == []
    async with sql_store.transaction() as tx:
        assert await tx.claim_once("review", envelope.message_id) is True


async def test_timings_are_parameters() -> None:
    assert ManualReviewTimings(review_timeout_seconds=1).review_timeout_seconds == 1
