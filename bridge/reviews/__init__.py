"""Pending manual reviews: the review queue's consumer, the ``review_tasks`` table, and
approve / reject through Step Functions with the stored task token (never shown).

::

    reviews = ReviewStore.open(store)            # the worker's database (a SagaStore)
    await reviews.create_table()
    worker.add_consumer(ReviewTaskConsumer(reviews), queue="review")
    service = ReviewService(reviews, StepFunctions(AwsConfig(region="eu-west-1")))
    await service.approve(review_id, reviewer="ann", comment="known customer")
"""

from ._aws import TASK_GONE_ERRORS, StepFunctions, TaskGoneError, execution_console_url
from ._consumer import ReviewTaskConsumer
from ._service import DecisionResult, ReviewService
from ._store import STATUSES, Review, ReviewStatus, ReviewStore, review_id, review_tasks

__all__ = [
    "STATUSES",
    "TASK_GONE_ERRORS",
    "DecisionResult",
    "Review",
    "ReviewService",
    "ReviewStatus",
    "ReviewStore",
    "ReviewTaskConsumer",
    "StepFunctions",
    "TaskGoneError",
    "execution_console_url",
    "review_id",
    "review_tasks",
]
