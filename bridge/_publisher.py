"""EventBridge through the outbox: entries are written in the saga's transaction and put
on the bus after the commit, ten per ``PutEvents``, re-sending only the entries that
failed.

A behavior calls :func:`put_event` (the ``hand_off`` activity does); the row waits in
the outbox under the kind ``eventbridge``. The worker's outbox dispatcher hands the rows
to :class:`EventBridgeSink`, registered with ``worker.add_sink(EVENTBRIDGE, sink)``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from typing import Any, Protocol

import orjson
from botocore.exceptions import ClientError

from core_saga import ConsumeContext
from core_saga.extension import DeliveryResult, DeliveryStatus
from core_saga.metrics import aws_calls
from core_saga.persistence import OutboxRow
from core_saga.tracing import current_traceparent, end_span

from ._telemetry import handoffs_lost, handoffs_started, put_events_spans, xray_header
from .contracts import MAX_EVENTBRIDGE_ENTRY_BYTES, check_eventbridge_entry_size

log = logging.getLogger("bridge.publisher")

EVENTBRIDGE = "eventbridge"
"""The outbox kind of EventBridge entries."""

MAX_ENTRIES_PER_CALL = 10
"""PutEvents takes at most ten entries."""

MAX_REQUEST_BYTES = 1024 * 1024
"""PutEvents' limit on a whole request (the entries' sizes added up)."""

PERMANENT_ENTRY_ERRORS = frozenset({
    "InvalidArgument", "MalformedDetail", "AccessDeniedException",
    "NotAuthorizedForSourceException", "ResourceNotFoundException", "ValidationException",
})
"""Entry error codes that a retry cannot fix; anything else (throttling, internal
failures) is retried."""

PERMANENT_CALL_ERRORS = frozenset({
    "ValidationException", "AccessDeniedException", "ResourceNotFoundException",
    "UnrecognizedClientException", "InvalidSignatureException",
})
"""Whole-call errors that fail every entry of the batch for good."""


def put_event(ctx: ConsumeContext[Any], *, bus: str, source: str, detail_type: str,
              detail: bytes, message_id: str, correlation_id: str | None = None,
              message_type: str | None = None,
              limit: int = MAX_EVENTBRIDGE_ENTRY_BYTES) -> None:
    """Add a PutEvents entry to the current transaction's outbox.

    `detail` is the event's JSON. The entry is refused here, with
    :class:`~bridge.contracts.PayloadTooLargeError`, when it is over `limit` bytes, so
    the behavior fails (and the message faults with that reason) instead of the entry
    failing later. `message_id` identifies the row (and the event in logs).
    """
    fields = {"Source": source, "DetailType": detail_type, "Detail": detail.decode(),
              "EventBusName": bus}
    # The trace goes on in the entry's X-Ray header: the sink's PutEvents span is its
    # child, and AWS passes it on to the target (the Step Functions execution's trace).
    header = xray_header(current_traceparent())
    if header:
        fields["TraceHeader"] = header
    entry = orjson.dumps(fields)
    check_eventbridge_entry_size(entry, limit=limit)
    ctx.add_raw(EVENTBRIDGE, bus, entry, message_type=message_type or f"eventbridge:{detail_type}",
                message_id=message_id, correlation_id=correlation_id)


class EventsClient(Protocol):
    """What the sink needs of an EventBridge client (aiobotocore's ``events``)."""

    async def put_events(self, **kwargs: Any) -> dict[str, Any]: ...


class EventBridgeSink:
    """Puts outbox rows of kind ``eventbridge`` on their bus.

    Rows go ten to a call (fewer when their sizes add up past 1 MB). On a partial
    failure (``FailedEntryCount > 0``) only the failed entries are sent again, after a
    short backoff with jitter, `quick_retries` times; entries still failing go back to
    the outbox dispatcher, which retries them later with its own backoff and, after its
    last attempt, keeps the row and writes it to the error store with the reason. An
    entry error a retry cannot fix (``MalformedDetail``, ``AccessDeniedException``…)
    is reported as permanent at once.
    """

    batch_size = MAX_ENTRIES_PER_CALL

    def __init__(self, client: EventsClient, *, quick_retries: int = 2,
                 backoff_seconds: float = 0.05) -> None:
        self.client = client
        self.quick_retries = quick_retries
        self.backoff_seconds = backoff_seconds
        self.calls = 0
        """PutEvents calls made (the cost model counts them)."""
        self.entries_sent = 0
        """Entries the bus accepted."""

    async def deliver(self, destination: str, rows: Sequence[OutboxRow]
                      ) -> dict[int, DeliveryResult]:
        failed: dict[int, DeliveryResult] = {}
        for chunk in _chunks(rows):
            failed.update(await self._deliver_chunk(chunk))
        _count_handoffs(rows, failed)
        return failed

    async def _deliver_chunk(self, rows: Sequence[OutboxRow]) -> dict[int, DeliveryResult]:
        permanent: dict[int, DeliveryResult] = {}
        pending = list(rows)
        reasons: dict[int, DeliveryResult] = {}
        for attempt in range(self.quick_retries + 1):
            if attempt:
                delay = self.backoff_seconds * 2 ** (attempt - 1)
                await asyncio.sleep(random.uniform(delay / 2, delay))
            try:
                results = await self._put(pending)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "ClientError")
                reason = f"PutEvents failed: {code}: {exc}"
                if code in PERMANENT_CALL_ERRORS:
                    return {**permanent,
                            **{r.id: DeliveryResult.permanent(reason) for r in pending}}
                reasons = {r.id: DeliveryResult.retry(reason) for r in pending}
                continue
            retry: list[OutboxRow] = []
            reasons = {}
            for row, result in zip(pending, results, strict=True):
                code = str(result.get("ErrorCode") or "")
                if not code:
                    self.entries_sent += 1
                    continue
                reason = f"PutEvents entry failed: {code}: {result.get('ErrorMessage', '')}"
                if code in PERMANENT_ENTRY_ERRORS:
                    permanent[row.id] = DeliveryResult.permanent(reason)
                else:
                    retry.append(row)
                    reasons[row.id] = DeliveryResult.retry(reason)
            if not retry:
                return permanent
            log.info("eventbridge: %d of %d entries failed (%s); re-sending those",
                     len(retry), len(pending),
                     sorted(r.reason for r in reasons.values())[0])
            pending = retry
        return {**permanent, **reasons}

    async def _put(self, rows: Sequence[OutboxRow]) -> list[dict[str, Any]]:
        self.calls += 1
        aws_calls.add(1, {"rpc.service": "events", "rpc.method": "PutEvents"})
        entries = [orjson.loads(r.body) for r in rows]
        spans = put_events_spans(str(entries[0].get("EventBusName", "")) if entries else "",
                                 rows, entries)
        try:
            response = await self.client.put_events(Entries=entries)
        except Exception as exc:
            for span in spans:
                end_span(span, f"{type(exc).__name__}: {exc}")
            raise
        results: list[dict[str, Any]] = response.get("Entries") or []
        if len(results) != len(rows):  # never on AWS: entries answer in order, one each
            for span in spans:
                end_span(span, "PutEvents answered for other entries")
            raise ClientError({"Error": {"Code": "InternalFailure", "Message":
                                         f"{len(results)} results for {len(rows)} entries"}},
                              "PutEvents")
        for span, result in zip(spans, results, strict=False):
            code = result.get("ErrorCode")
            if span is not None and result.get("EventId"):
                span.set_attribute("stepsaga.event_id", str(result["EventId"]))
            end_span(span, f"{code}: {result.get('ErrorMessage', '')}" if code else None)
        return results


def _count_handoffs(rows: Sequence[OutboxRow], failed: dict[int, DeliveryResult]) -> None:
    """``stepsaga.handoffs.started`` for each SupervisionRequested the bus took, ``lost``
    for each it refused for good."""
    for row in rows:
        if not row.message_type.endswith(":SupervisionRequested"):
            continue
        result = failed.get(row.id)
        if result is not None and result.status is not DeliveryStatus.PERMANENT:
            continue  # retried later
        try:
            detail = orjson.loads(orjson.loads(row.body)["Detail"])
            workflow = str(detail.get("workflow", ""))
        except (ValueError, KeyError, TypeError, AttributeError):
            workflow = ""
        if result is None:
            handoffs_started.add(1, {"stepsaga.workflow": workflow})
        else:
            handoffs_lost.add(1, {"stepsaga.workflow": workflow,
                                  "stepsaga.reason": "not_delivered"})


def _chunks(rows: Sequence[OutboxRow]) -> list[list[OutboxRow]]:
    """`rows` in calls of at most ten entries and 1 MB."""
    chunks: list[list[OutboxRow]] = []
    current: list[OutboxRow] = []
    size = 0
    for row in rows:
        if current and (len(current) == MAX_ENTRIES_PER_CALL
                        or size + len(row.body) > MAX_REQUEST_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(row)
        size += len(row.body)
    if current:
        chunks.append(current)
    return chunks
