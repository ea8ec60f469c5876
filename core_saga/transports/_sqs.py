"""Amazon SQS transport on aiobotocore: batched sends, receives and deletes, long
polling, visibility extension, redelivery with backoff, dead-letter queues, FIFO."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import orjson
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from .. import _metrics
from .._aws import AwsConfig
from .._errors import MessageTooLargeError, ReceiptExpiredError
from ._base import DEFAULT_MAX_MESSAGE_BYTES, ReceivedMessage, SendFailure, TransportMessage

log = logging.getLogger("core_saga.sqs")

DEAD_LETTER_REASON = "stepsaga-dead-letter-reason"
MAX_BATCH = 10


@dataclass(frozen=True, slots=True)
class SqsConfig(AwsConfig):
    """How to reach SQS (an :class:`~core_saga.AwsConfig`) and name its queues."""

    queue_prefix: str = ""
    """Prepended to every logical queue name (e.g. ``stepsaga-prod-``)."""
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    """Refuse larger bodies at send. 1 MiB is the SQS limit since January 2026."""


class SqsTransport:
    """The Transport contract on Amazon SQS.

    Logical queue names (``payment``) resolve to URLs once and are cached; a name
    that already is a URL (a ``replyTo`` from a workflow) is used as it is. On FIFO
    queues the group id is the correlation id and the deduplication id the message id.
    """

    def __init__(self, client: Any, config: SqsConfig | None = None) -> None:
        self.client = client
        self.config = config or SqsConfig()
        self.max_message_bytes = self.config.max_message_bytes
        self._urls: dict[str, str] = {}
        self._dlq_urls: dict[str, str] = {}
        self.calls: dict[str, int] = {}
        self._stack: AsyncExitStack | None = None

    @classmethod
    async def connect(cls, config: SqsConfig) -> SqsTransport:
        """Open an aiobotocore client for `config`; close it with :meth:`close`."""
        stack = AsyncExitStack()
        client = await stack.enter_async_context(
            get_session().create_client("sqs", **config.client_kwargs()))
        transport = cls(client, config)
        transport._stack = stack
        return transport

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None

    def _count(self, operation: str) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        _metrics.aws_calls.add(1, {"rpc.service": "sqs", "rpc.method": operation})

    @property
    def total_calls(self) -> int:
        """SQS API calls made so far (the cost model counts these)."""
        return sum(self.calls.values())

    async def queue_url(self, queue: str) -> str:
        """The URL of a logical queue name (cached)."""
        if queue.startswith(("https://", "http://")):
            return queue
        url = self._urls.get(queue)
        if url is None:
            self._count("GetQueueUrl")
            response = await self.client.get_queue_url(QueueName=self.config.queue_prefix + queue)
            url = self._urls[queue] = response["QueueUrl"]
        return url

    def physical_name(self, queue: str) -> str:
        """The queue's name in SQS (the prefix added; a URL's last part)."""
        if queue.startswith(("https://", "http://")):
            return queue.rstrip("/").rsplit("/", 1)[-1]
        return self.config.queue_prefix + queue

    def set_queue_urls(self, urls: Mapping[str, str]) -> None:
        """Use known URLs (e.g. from the CDK stack outputs) instead of looking them up."""
        self._urls.update(urls)

    async def send_batch(self, queue: str, messages: Sequence[TransportMessage]
                         ) -> list[SendFailure]:
        failures: list[SendFailure] = []
        entries = []
        fifo = queue.endswith(".fifo")
        for index, m in enumerate(messages):
            if len(m.body) > self.max_message_bytes:
                failures.append(SendFailure(m.message_id, str(MessageTooLargeError(
                    queue, len(m.body), self.max_message_bytes, m.message_type)), True))
                continue
            attributes = {"MessageType": {"DataType": "String", "StringValue": m.message_type}}
            if m.traceparent:
                attributes["traceparent"] = {"DataType": "String", "StringValue": m.traceparent}
            entry: dict[str, Any] = {"Id": str(index), "MessageBody": m.body.decode(),
                                     "MessageAttributes": attributes}
            if fifo:
                entry["MessageGroupId"] = m.correlation_id or m.message_id
                entry["MessageDeduplicationId"] = m.message_id
            elif m.delay_seconds:
                entry["DelaySeconds"] = min(900, m.delay_seconds)
            entries.append(entry)
        if not entries:
            return failures
        url = await self.queue_url(queue)
        self._count("SendMessageBatch")
        response = await self.client.send_message_batch(QueueUrl=url, Entries=entries)
        for failed in response.get("Failed", []):
            message = messages[int(failed["Id"])]
            failures.append(SendFailure(
                message.message_id, f"{failed.get('Code')}: {failed.get('Message')}",
                permanent=bool(failed.get("SenderFault"))))
        return failures

    async def receive(self, queue: str, *, max_messages: int = 10,
                      wait_seconds: float = 20.0) -> list[ReceivedMessage]:
        url = await self.queue_url(queue)
        self._count("ReceiveMessage")
        response = await self.client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=max(1, min(MAX_BATCH, max_messages)),
            WaitTimeSeconds=int(min(20, max(0, wait_seconds))),
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        )
        received = []
        for m in response.get("Messages", []):
            attributes = {k: v.get("StringValue", "")
                          for k, v in (m.get("MessageAttributes") or {}).items()}
            system = m.get("Attributes") or {}
            count = int(system.get("ApproximateReceiveCount", "1"))
            sent = system.get("SentTimestamp")
            received.append(ReceivedMessage(
                m["Body"].encode(), m["ReceiptHandle"], count, m["MessageId"], attributes,
                sent_ns=int(sent) * 1_000_000 if sent and sent.isdigit() else None))
        return received

    async def delete_batch(self, queue: str, messages: Sequence[ReceivedMessage]) -> None:
        url = await self.queue_url(queue)
        for start in range(0, len(messages), MAX_BATCH):
            chunk = messages[start:start + MAX_BATCH]
            self._count("DeleteMessageBatch")
            response = await self.client.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m.handle} for i, m in enumerate(chunk)])
            for failed in response.get("Failed", []):
                # The message comes back after its visibility timeout; the inbox absorbs it.
                log.warning("delete on %s failed: %s", queue, failed)

    async def change_visibility(self, queue: str, message: ReceivedMessage,
                                timeout_seconds: int) -> None:
        url = await self.queue_url(queue)
        self._count("ChangeMessageVisibility")
        try:
            await self.client.change_message_visibility(
                QueueUrl=url, ReceiptHandle=message.handle,
                VisibilityTimeout=max(0, min(43_200, timeout_seconds)))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _STALE_RECEIPT:
                raise ReceiptExpiredError(
                    f"{queue}: message {message.transport_id}: {code}") from exc
            raise

    async def redrive_limit(self, queue: str) -> int | None:
        """The queue's ``maxReceiveCount`` (receives before SQS itself moves a message to
        the dead-letter queue), or None without a redrive policy."""
        source = await self.queue_url(queue)
        self._count("GetQueueAttributes")
        attributes = await self.client.get_queue_attributes(
            QueueUrl=source, AttributeNames=["RedrivePolicy"])
        policy = (attributes.get("Attributes") or {}).get("RedrivePolicy")
        if not policy:
            return None
        return int(orjson.loads(policy)["maxReceiveCount"])

    async def dead_letter_url(self, queue: str) -> str:
        """The URL of `queue`'s dead-letter queue, from its redrive policy."""
        url = self._dlq_urls.get(queue)
        if url is not None:
            return url
        source = await self.queue_url(queue)
        self._count("GetQueueAttributes")
        attributes = await self.client.get_queue_attributes(
            QueueUrl=source, AttributeNames=["RedrivePolicy"])
        policy = (attributes.get("Attributes") or {}).get("RedrivePolicy")
        if policy:
            arn = orjson.loads(policy)["deadLetterTargetArn"]
            self._count("GetQueueUrl")
            url = (await self.client.get_queue_url(QueueName=arn.rsplit(":", 1)[-1]))["QueueUrl"]
        else:
            name = queue.rsplit("/", 1)[-1]
            fifo = name.endswith(".fifo")
            dlq = (name[:-5] + "-dlq.fifo") if fifo else name + "-dlq"
            self._count("GetQueueUrl")
            url = (await self.client.get_queue_url(QueueName=dlq))["QueueUrl"]
        assert isinstance(url, str)
        self._dlq_urls[queue] = url
        return url

    async def dead_letter(self, queue: str, message: ReceivedMessage, reason: str) -> None:
        dlq = await self.dead_letter_url(queue)
        attributes = {f"{k}": {"DataType": "String", "StringValue": v}
                      for k, v in message.attributes.items() if v}
        attributes[DEAD_LETTER_REASON] = {"DataType": "String",
                                          "StringValue": reason[:1000] or "unknown"}
        kwargs: dict[str, Any] = {"QueueUrl": dlq, "MessageBody": message.body.decode(
            errors="replace"), "MessageAttributes": attributes}
        if dlq.endswith(".fifo"):
            kwargs["MessageGroupId"] = "dead-letters"
            kwargs["MessageDeduplicationId"] = message.transport_id
        self._count("SendMessage")
        await self.client.send_message(**kwargs)
        await self.delete_batch(queue, [message])


_STALE_RECEIPT = frozenset({
    "ReceiptHandleIsInvalid", "AWS.SimpleQueueService.ReceiptHandleIsInvalid",
    "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight"})
"""Error codes meaning the receipt is no longer this worker's to settle."""


@contextlib.asynccontextmanager
async def sqs_transport(config: SqsConfig) -> AsyncIterator[SqsTransport]:
    """``async with sqs_transport(config) as transport: ...``"""
    transport = await SqsTransport.connect(config)
    try:
        yield transport
    finally:
        await transport.close()
