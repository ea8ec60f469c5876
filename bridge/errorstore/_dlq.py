"""Moving an SQS dead-letter queue's messages back to their source queue.

SQS's own ``StartMessageMoveTask`` is not on every SQS the project runs against (the
local emulator lacks it), so the move is receive, send, delete, in batches of ten: a
message is deleted from the dead-letter queue only once the source queue has taken it.
A failure half-way leaves the rest where they were (visible again after
``visibility_seconds``). Each message keeps its body, and so its message id: a duplicate
is absorbed by the consumer's inbox."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from core_saga.transports._sqs import DEAD_LETTER_REASON

log = logging.getLogger("bridge.errorstore")

BATCH = 10


class DlqProblem(Exception):
    """The queues are not what a redrive needs (the message says what to do)."""


@dataclass(slots=True)
class DlqResult:
    """What a dead-letter redrive moved."""

    dead_letter_queue: str
    destination: str
    moved: int = 0
    failed: int = 0
    correlation_ids: dict[str, int] = field(default_factory=dict)
    """How many messages of each order moved."""
    problem: str | None = None
    """Why it stopped early (the rest stay in the dead-letter queue), if it did."""

    @property
    def message(self) -> str:
        text = (f"{self.moved} message{'s' if self.moved != 1 else ''} moved from "
                f"{self.dead_letter_queue} to {self.destination}")
        if self.failed:
            text += f"; {self.failed} refused by the destination stay in the dead-letter queue"
        if self.problem:
            text += f"; stopped: {self.problem}; the rest stay in the dead-letter queue"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"deadLetterQueue": self.dead_letter_queue, "destination": self.destination,
                "moved": self.moved, "failed": self.failed, "problem": self.problem,
                "message": self.message}


def _name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


async def queue_url(client: Any, queue: str) -> str:
    """A queue's URL from its name or URL (a URL is checked to exist)."""
    try:
        if queue.startswith(("https://", "http://")):
            await client.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
            return queue
        found: str = (await client.get_queue_url(QueueName=queue))["QueueUrl"]
        return found
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if "NonExistentQueue" in code or "QueueDoesNotExist" in code:
            raise DlqProblem(f"no queue {queue!r}") from None
        raise


async def source_queue(client: Any, dlq_url: str) -> str:
    """The one queue whose redrive policy names `dlq_url` as its dead-letter queue."""
    sources = (await client.list_dead_letter_source_queues(QueueUrl=dlq_url)
               ).get("queueUrls", [])
    if not sources:
        raise DlqProblem(f"no queue has {_name(dlq_url)} as its dead-letter queue: name "
                         "the destination (--to)")
    if len(sources) > 1:
        names = ", ".join(sorted(_name(s) for s in sources))
        raise DlqProblem(f"{_name(dlq_url)} is the dead-letter queue of several queues "
                         f"({names}): name the destination (--to)")
    found: str = sources[0]
    return found


def _correlation_id(body: str) -> str | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    found = data.get("correlationId") if isinstance(data, dict) else None
    return found if isinstance(found, str) and 0 < len(found) <= 200 else None


async def redrive_dead_letters(client: Any, dead_letter_queue: str, *,
                               to: str | None = None, limit: int | None = None,
                               visibility_seconds: int = 60) -> DlqResult:
    """Move up to `limit` (None: all there when it starts) messages of
    `dead_letter_queue` (a name or URL) to
    `to`, or to the queue whose dead-letter queue it is. `client` is an aiobotocore SQS
    client. Raises :class:`DlqProblem` when the queues are wrong (nothing moved); an
    AWS failure during the move stops it and is in the result's ``problem``."""
    dlq = await queue_url(client, dead_letter_queue)
    destination = await queue_url(client, to) if to else await source_queue(client, dlq)
    if destination == dlq:
        raise DlqProblem("the destination is the dead-letter queue itself")
    fifo = destination.endswith(".fifo")
    # Only the messages there now: one that fails again comes back to the dead-letter
    # queue while the move goes on, and must not be moved round and round.
    attributes = await client.get_queue_attributes(
        QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
    there = int((attributes.get("Attributes") or {}).get("ApproximateNumberOfMessages", 0))
    limit = there if limit is None else min(limit, there)
    result = DlqResult(_name(dlq), _name(destination))
    empty = 0
    while result.moved + result.failed < limit:
        want = min(BATCH, limit - result.moved - result.failed)
        try:
            answer = await client.receive_message(
                QueueUrl=dlq, MaxNumberOfMessages=want, WaitTimeSeconds=1,
                VisibilityTimeout=visibility_seconds, MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"])
        except Exception as exc:
            result.problem = f"{type(exc).__name__}: {exc}"
            return result
        messages = answer.get("Messages", [])
        if not messages:
            empty += 1
            if empty >= 2:  # two empty receives in a row: the queue is drained
                return result
            continue
        empty = 0
        entries = []
        for index, m in enumerate(messages):
            attributes = {k: v for k, v in (m.get("MessageAttributes") or {}).items()
                          if k != DEAD_LETTER_REASON}
            entry: dict[str, Any] = {"Id": str(index), "MessageBody": m["Body"]}
            if attributes:
                entry["MessageAttributes"] = attributes
            if fifo:
                system = m.get("Attributes") or {}
                entry["MessageGroupId"] = system.get("MessageGroupId", "redriven")
                entry["MessageDeduplicationId"] = system.get("MessageDeduplicationId",
                                                             m["MessageId"])
            entries.append(entry)
        try:
            sent = await client.send_message_batch(QueueUrl=destination, Entries=entries)
        except Exception as exc:
            # Nothing deleted: the messages show again in the dead-letter queue.
            result.problem = f"{type(exc).__name__}: {exc}"
            return result
        refused = {f["Id"] for f in sent.get("Failed", [])}
        result.failed += len(refused)
        moved = [m for i, m in enumerate(messages) if str(i) not in refused]
        if moved:
            try:
                await client.delete_message_batch(QueueUrl=dlq, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(moved)])
            except Exception as exc:
                # Sent but not deleted: they show again in the dead-letter queue, and a
                # second move is absorbed by the inbox.
                result.problem = (f"{len(moved)} sent but not deleted from the dead-letter "
                                  f"queue ({type(exc).__name__}: {exc})")
                return result
        for m in moved:
            result.moved += 1
            cid = _correlation_id(m["Body"])
            if cid is not None:
                result.correlation_ids[cid] = result.correlation_ids.get(cid, 0) + 1
        if refused and not moved:
            result.problem = "the destination refused every message of a batch"
            return result
    return result


async def audit_dlq_redrive(audit: Any, result: DlqResult, *, actor: str,
                            reason: str | None, at: Any) -> None:
    """One audit entry for the move, and one per order whose messages moved (so that
    each order's timeline shows it)."""
    from bridge.audit import AuditEntry

    outcome = "moved" if result.problem is None and not result.failed else "partial"
    if result.moved == 0 and result.problem is not None:
        outcome = "failed"
    detail = {"destination": result.destination, "moved": result.moved,
              "failed": result.failed, "problem": result.problem}
    await audit.record(AuditEntry(at=at, actor=actor, action="dlq-redrive",
                                  target=result.dead_letter_queue[:200], outcome=outcome,
                                  reason=reason, detail=detail))
    for cid, count in sorted(result.correlation_ids.items()):
        await audit.record(AuditEntry(
            at=at, actor=actor, action="dlq-redrive", target=result.dead_letter_queue[:200],
            outcome="moved", correlation_id=cid, reason=reason,
            detail={"destination": result.destination, "messages": count}))
