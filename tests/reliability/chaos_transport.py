"""A transport that makes SQS worse than it is: it puts a copy of some received
messages back on their queue (the same body: a duplicate delivery, whoever sent it —
a service, EventBridge or Step Functions) and holds some sent messages back a few
seconds (out-of-order delivery). For the orders of the ``concurrent`` path it sends
``PaymentCharged`` several times at once, each copy with a message id of its own (so
the inbox lets every copy in): several workers then handle one saga's event at the same
moment, which only the instance's version check keeps from being applied twice.
Everything else goes to the real transport."""

from __future__ import annotations

import json
import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from core_saga.transports import ReceivedMessage, SendFailure, SqsTransport, TransportMessage

from .plan import CONCURRENT, path_of

log = logging.getLogger("reliability.chaos")


class ChaosTransport:
    """Wraps an :class:`SqsTransport`; logs each fault as a ``CHAOS`` line, which the
    harness counts."""

    def __init__(self, inner: SqsTransport, rng: random.Random, *, duplicate: float,
                 delay: float, concurrent_copies: int = 0) -> None:
        self.inner = inner
        self.rng = rng
        self.duplicate = duplicate
        self.delay = delay
        self.concurrent_copies = concurrent_copies
        self.max_message_bytes = inner.max_message_bytes

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def send_batch(self, queue: str, messages: Sequence[TransportMessage]
                         ) -> list[SendFailure]:
        held, copies = [], []
        for message in messages:
            if not message.delay_seconds and self.rng.random() < self.delay:
                log.warning("CHAOS out-of-order delivery: %s to %s held back",
                            message.message_type, queue)
                message = replace(message, delay_seconds=self.rng.randint(1, 3))
            held.append(message)
            copies.extend(self._concurrent_copies(message))
        failures = await self.inner.send_batch(queue, held)
        if copies and not failures:  # the copies go only with their original
            for failure in await self.inner.send_batch(queue, copies):
                log.warning("could not send a concurrent copy to %s: %s", queue, failure.reason)
        return failures

    def _concurrent_copies(self, message: TransportMessage) -> list[TransportMessage]:
        if not self.concurrent_copies or not message.message_type.endswith(
                ":PaymentCharged:v1"):
            return []
        envelope = json.loads(message.body)
        order_id = str(envelope.get("message", {}).get("orderId", ""))
        if path_of(order_id) != CONCURRENT:
            return []
        copies = []
        for _ in range(self.concurrent_copies):
            envelope["messageId"] = uuid.uuid4().hex
            copies.append(replace(message, body=json.dumps(envelope).encode(),
                                  message_id=envelope["messageId"]))
        log.warning("CHAOS concurrent event: %d copies of PaymentCharged of %s",
                    len(copies), order_id)
        return copies

    async def receive(self, queue: str, *, max_messages: int = 10,
                      wait_seconds: float = 20.0) -> list[ReceivedMessage]:
        received = await self.inner.receive(queue, max_messages=max_messages,
                                            wait_seconds=wait_seconds)
        copies = [m for m in received if self.rng.random() < self.duplicate]
        if copies:
            for copy in copies:
                log.warning("CHAOS duplicate delivery: a copy of %s put back on %s",
                            copy.transport_id, queue)
            failures = await self.inner.send_batch(queue, [TransportMessage(
                body=m.body, message_id=uuid.uuid4().hex,
                message_type=m.attributes.get("MessageType", "duplicate"),
                traceparent=m.attributes.get("traceparent")) for m in copies])
            for failure in failures:
                log.warning("could not duplicate a message on %s: %s", queue, failure.reason)
        return received

    async def delete_batch(self, queue: str, messages: Sequence[ReceivedMessage]) -> None:
        await self.inner.delete_batch(queue, messages)

    async def change_visibility(self, queue: str, message: ReceivedMessage,
                                timeout_seconds: int) -> None:
        await self.inner.change_visibility(queue, message, timeout_seconds)

    async def dead_letter(self, queue: str, message: ReceivedMessage, reason: str) -> None:
        await self.inner.dead_letter(queue, message, reason)

    async def close(self) -> None:
        await self.inner.close()
