"""The SQS queues: the saga's, the participant services', and the review queue — each
with a dead-letter queue and redrive policy, encryption (SQS-managed, or the stack's KMS
key) and an SSL-only queue policy. Queues and DLQs follow the stage's removal policy:
with ``retain`` they outlive ``cdk destroy`` with their messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .settings import InfraSettings

SAGA_QUEUE: Final = "order-saga"
"""The Order-to-Cash saga's queue: its events, and the workflows' replies (``replyTo``)."""
SERVICE_QUEUES: Final[tuple[str, ...]] = ("payment", "inventory", "shipping", "orders")
"""The participant services' command queues."""
REVIEW_QUEUE: Final = "review"
"""Where ManualReview puts review tasks (read by the ops console)."""
SHIPPING_QUEUE: Final = "shipping"
"""The shipping service's queue; SlowShipping sends its shipping requests there."""
QUEUE_NAMES: Final[tuple[str, ...]] = (SAGA_QUEUE, *SERVICE_QUEUES, REVIEW_QUEUE)
"""Every work queue, by its name without the stage prefix."""


def logical_name(queue: str) -> str:
    """``order-saga`` → ``OrderSaga`` (construct ids and output names)."""
    return "".join(part.title() for part in queue.split("-"))


@dataclass(frozen=True)
class QueuePair:
    """A work queue and its dead-letter queue."""

    name: str
    queue: sqs.Queue
    dlq: sqs.Queue


def queue_encryption(key: kms.IKey | None) -> dict[str, Any]:
    """The ``sqs.Queue`` keyword arguments for encryption with `key` (None: SQS-managed)."""
    if key is None:
        return {"encryption": sqs.QueueEncryption.SQS_MANAGED}
    return {"encryption": sqs.QueueEncryption.KMS, "encryption_master_key": key,
            "data_key_reuse": Duration.minutes(5)}


class MessagingQueues(Construct):
    """Every work queue of the stack, named ``stepsaga-<stage>-<name>`` with
    ``stepsaga-<stage>-<name>-dlq`` (the names the workers find with
    ``STEPSAGA_QUEUE_PREFIX=stepsaga-<stage>-``)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings,
                 removal_policy: RemovalPolicy, key: kms.IKey | None) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.key = key
        self.pairs: dict[str, QueuePair] = {
            name: self._pair(name, removal_policy) for name in QUEUE_NAMES}

    def _pair(self, name: str, removal_policy: RemovalPolicy) -> QueuePair:
        settings = self.settings
        ident = logical_name(name)
        dlq = sqs.Queue(
            self, f"{ident}Dlq",
            queue_name=f"{settings.queue_prefix}{name}-dlq",
            **queue_encryption(self.key),
            enforce_ssl=True,
            retention_period=Duration.days(settings.dlq_retention_days),
            removal_policy=removal_policy,
        )
        queue = sqs.Queue(
            self, f"{ident}Queue",
            queue_name=f"{settings.queue_prefix}{name}",
            **queue_encryption(self.key),
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(settings.visibility_timeout_seconds),
            retention_period=Duration.days(settings.message_retention_days),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=dlq, max_receive_count=settings.max_receive_count),
            removal_policy=removal_policy,
        )
        return QueuePair(name, queue, dlq)

    def queue(self, name: str) -> sqs.Queue:
        """The work queue called `name` (without the stage prefix)."""
        return self.pairs[name].queue
