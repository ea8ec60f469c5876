"""The per-order timeline: every source merged in time order into typed entries, on
SQLite and PostgreSQL, with task tokens masked everywhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from bridge._handoffs import HandoffRecord
from bridge.contracts import REDACTED, SUPERVISION_COMPLETED_URN, ReviewTask
from bridge.reviews import ReviewStore
from bridge.timeline import (
    TimelineEntry,
    build_timeline,
    compensation_types,
    execution_entries,
    merge,
    read_execution,
    redact,
    trace_id_of,
)
from core_saga import AwsConfig, Envelope
from core_saga.extension import Outgoing
from core_saga.persistence import AsyncpgStore, ErrorRecord, HistoryRecord, InstanceRecord, SqlStore
from examples.order_to_cash.saga import OrderSaga
from tests.console.support import TRACE_ID, TRACEPARENT, OrderNeedsReview

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "AQCEAAAAKgAAAAMAAAAAAAAAAsecret-task-token=="


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def entry(kind: Any, seconds: float, source: Any, summary: str) -> TimelineEntry:
    return TimelineEntry(kind=kind, at=at(seconds), source=source, summary=summary)


def test_merge_orders_by_time_then_source_then_arrival() -> None:
    saga = [entry("transition", 1, "saga", "a"), entry("transition", 5, "saga", "e")]
    outbox = [entry("sent", 1, "outbox", "b"), entry("sent", 3, "outbox", "d")]
    sfn = [entry("supervisor", 0.5, "stepfunctions", "0"),
           entry("supervisor", 1, "stepfunctions", "c")]
    merged = merge(sfn, outbox, saga)
    assert [e.summary for e in merged] == ["0", "a", "b", "c", "d", "e"]
    # What a transition wrote is stamped before its history row: anchored after it.
    wrote = entry("sent", 0.9, "outbox", "written by a")
    merged = merge(saga, [wrote], anchors={id(wrote): saga[0].at})
    assert [e.summary for e in merged] == ["a", "written by a", "e"]
    assert merged[1].at == at(0.9)


def test_trace_ids_and_redaction() -> None:
    assert trace_id_of(TRACEPARENT) == TRACE_ID
    assert trace_id_of("garbage") is None and trace_id_of(None) is None
    assert trace_id_of("00-" + "0" * 32 + "-00f067aa0ba902b7-01") is None
    value = {"taskToken": SECRET, "nested": [{"TaskToken": "x"}],
             "text": f"token {SECRET} inside", "json": json.dumps({"task_token": "y"})}
    out = redact(value, [SECRET])
    assert SECRET not in json.dumps(out)
    assert out["taskToken"] == REDACTED and out["nested"][0]["TaskToken"] == REDACTED
    assert json.loads(out["json"])["task_token"] == REDACTED


def test_compensations_come_from_the_model() -> None:
    names = {urn.split(":")[-2] for urn in compensation_types(OrderSaga.model)}
    assert {"RefundPayment", "ReleaseInventory", "CancelShipment"} <= names


def test_execution_history_entries_fold_the_plumbing_and_name_decisions_and_callbacks(
        ) -> None:
    arn = "arn:aws:states:eu-west-1:123456789012:execution:mr:x-1"
    seconds = iter(range(100))

    def event(kind: str, **details: Any) -> dict[str, Any]:
        n = next(seconds)
        found: dict[str, Any] = {"id": n, "type": kind, "timestamp": at(n)}
        if details:
            key = {"TaskStateEntered": "stateEnteredEventDetails",
                   "ChoiceStateEntered": "stateEnteredEventDetails",
                   "PassStateEntered": "stateEnteredEventDetails",
                   "SucceedStateEntered": "stateEnteredEventDetails",
                   "TaskStateExited": "stateExitedEventDetails"}.get(kind)
            key = key or kind[0].lower() + kind[1:] + "EventDetails"
            found[key] = details
        return found

    def task(name: str, resource: str, **scheduled: Any) -> list[dict[str, Any]]:
        return [event("TaskStateEntered", name=name),
                event("TaskScheduled", resource=resource, resourceType="sqs", **scheduled)]

    events: list[dict[str, Any]] = [
        event("ExecutionStarted", input=json.dumps({"handoffId": "h"})),
        *task("ClaimHandoff", "putItem"), event("TaskSucceeded", output="{}"),
        event("TaskStateExited", name="ClaimHandoff"),
        event("ChoiceStateEntered", name="HasTraceparent"),
        event("PassStateEntered", name="WithTraceparent"),
        *task("ReportStarted", "sendMessage"), event("TaskSucceeded", output="{}"),
        event("TaskStateExited", name="ReportStarted"),
        *task("AwaitReview", "sendMessage.waitForTaskToken", parameters=json.dumps(
            {"MessageBody": {"headers": {"taskToken": SECRET}}})),
        event("TaskSubmitted", output="{}"),
        event("TaskSucceeded", output=json.dumps({"decision": "approved",
                                                  "reviewer": "ann"})),
        event("TaskStateExited", name="AwaitReview"),
        event("ChoiceStateEntered", name="CheckDecision"),
        event("PassStateEntered", name="Approved"),
        *task("DeliverOutcome", "sendMessage.waitForTaskToken"),
        event("TaskSubmitted", output="{}"),
    ]
    running, _, path = read_execution(arn, events)
    assert path.entered == ["ClaimHandoff", "HasTraceparent", "WithTraceparent",
                            "ReportStarted", "AwaitReview", "CheckDecision", "Approved",
                            "DeliverOutcome"]
    assert path.current == "DeliverOutcome"
    events += [event("TaskSucceeded", output="{}"),
               event("TaskStateExited", name="DeliverOutcome"),
               event("SucceedStateEntered", name="Delivered"),
               event("ExecutionSucceeded", output="{}")]
    entries, tokens = execution_entries(arn, events)
    assert tokens == {SECRET}
    kinds = [(e.kind, e.summary.split(": ", 1)[1]) for e in entries]
    assert kinds == [
        ("supervisor", "execution started"),
        ("supervisor", "ClaimHandoff → HasTraceparent → WithTraceparent → ReportStarted"),
        ("supervisor", "entered AwaitReview"),
        ("supervisor", "review handed to a person (AwaitReview)"),
        ("decision", "reviewer answered approved (by ann)"),
        ("supervisor", "CheckDecision → Approved"),
        ("supervisor", "entered DeliverOutcome"),
        ("callback", "outcome delivered to the saga, waiting for its acknowledgement"),
        ("callback", "the saga acknowledged the outcome (task-token callback)"),
        ("supervisor", "Delivered"),
        ("supervisor", "execution succeeded")]
    folded = entries[1].folded
    assert [(f["state"], f["type"]) for f in folded] == [
        ("ClaimHandoff", "Task"), ("HasTraceparent", "Choice"), ("WithTraceparent", "Pass"),
        ("ReportStarted", "Task")]
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    assert len(running) < len(entries)


async def seed(store: SqlStore | AsyncpgStore, order: str) -> None:
    """An order that was handed to review, approved, then charged, with a timer, a
    compensation, a failed send and an error — each at a known time."""
    handoff = HandoffRecord(handoff_id="h-1", workflow="ManualReview", reason="big order",
                            requested_at=at(1), execution_arn="arn:aws:states:eu-west-1:"
                            "123456789012:execution:mr:x-1", started_at=at(2),
                            outcome="approved", result={"reviewer": "ann"}, completed_at=at(6))
    data = {"handoffs": [handoff.model_dump(mode="json")], "amount": "2500"}

    def out(kind: str, dest: str, body: bytes, urn: str, mid: str,
            deliver_at: datetime | None = None) -> Outgoing:
        return Outgoing(kind=kind, destination=dest, body=body, message_id=mid,
                        message_type=urn, correlation_id=order, deliver_at=deliver_at)

    def env(message: Any, mid: str) -> bytes:
        return Envelope(message, message_id=mid, correlation_id=order,
                        headers={"traceparent": TRACEPARENT}).encode()

    async with store.transaction() as tx:
        await tx.insert(InstanceRecord(saga_type="OrderToCash", correlation_id=order,
                                       state="PaymentPending", version=3, data=data,
                                       created_at=at(0), updated_at=at(7)))
        await tx.add_history([
            HistoryRecord("OrderToCash", order, "OrderSubmitted", "Initial", "AwaitingReview",
                          "m-1", "urn:message:order_to_cash:OrderSubmitted:v1", at(1)),
            HistoryRecord("OrderToCash", order, "SupervisionCompleted", "AwaitingReview",
                          "PaymentPending", "m-2", SUPERVISION_COMPLETED_URN, at(7)),
        ])
    async with store.transaction() as tx:
        await tx.add_outbox([out("eventbridge", "bus", json.dumps(
            {"DetailType": "SupervisionRequested", "Detail": json.dumps(
                {"handoffId": "h-1", "traceparent": TRACEPARENT})}).encode(),
            "urn:message:stepsaga.bridge:SupervisionRequested:v1", "o-1")], at(1.1), None)
    async with store.transaction() as tx:
        await tx.add_outbox([out("sfn-task", "SendTaskSuccess", json.dumps(
            {"taskToken": SECRET, "output": "{}"}).encode(), "urn:x:TaskSuccess:v1", "o-2"),
            out("send", "payment", env(OrderNeedsReview(order_id=order), "o-3"),
                "urn:message:order_to_cash:ChargePayment:v1", "o-3")], at(7.1), None)
        await tx.inbox_claim("payment", "o-3", at(8))
    async with store.transaction() as tx:
        await tx.add_outbox([out("send", "order-saga", env(OrderNeedsReview(order_id=order),
                                                          "o-4"),
                                 "urn:message:order_to_cash:ShippingDeadline:v1", "o-4",
                                 deliver_at=at(3600)),
                             out("send", "payment", env(OrderNeedsReview(order_id=order), "o-5"),
                                 "urn:message:order_to_cash:RefundPayment:v1", "o-5")],
                            at(9), None)
    await store.add_error(ErrorRecord(endpoint="payment", error_type="ValueError",
                                      reason=f"gateway down ({SECRET})", body="{}", at=at(8.5),
                                      message_id="o-3", correlation_id=order,
                                      headers={"traceparent": TRACEPARENT}))


async def test_a_seeded_order_reads_back_in_time_order(sql_store: SqlStore | AsyncpgStore
                                                       ) -> None:
    # (The timeline reads through the store's public queries, so it works on every store;
    # SQL stores here because the reviews live in a SQL table.)
    order = "order-42"
    await seed(sql_store, order)
    reviews = ReviewStore.open(sql_store)
    await reviews.create_table()
    await reviews.record(ReviewTask(
        handoff_id="h-1", correlation_id=order, saga_type="OrderToCash", reason="big order",
        payload={}, escalated=False, execution_arn="arn:aws:states:eu-west-1:123456789012:"
        "execution:mr:x-1", task_token=SECRET), at(3))
    try:
        timeline = await build_timeline(sql_store, order, reviews=reviews,
                                        model=OrderSaga.model, aws=AwsConfig())
        assert await build_timeline(sql_store, "nobody", reviews=reviews) is None
    finally:
        await reviews.close()
    assert timeline is not None
    assert (timeline.saga_type, timeline.state, timeline.finished) == (
        "OrderToCash", "PaymentPending", False)
    got = [(e.at, e.kind, e.summary) for e in timeline.entries]
    assert [g[0] for g in got] == sorted(g[0] for g in got)
    assert [(round((g[0] - T0).total_seconds(), 1), g[1]) for g in got] == [
        (1.0, "transition"),   # received OrderSubmitted: Initial → AwaitingReview
        (1.0, "handoff"),      # handed off to ManualReview
        (1.1, "handoff"),      # SupervisionRequested on the bus
        (2.0, "handoff"),      # ManualReview started
        (3.0, "handoff"),      # review waiting for a person
        (6.0, "decision"),     # outcome approved (by ann)
        (7.0, "callback"),     # received SupervisionCompleted → PaymentPending
        (7.1, "callback"),     # answered the supervisor (SendTaskSuccess)
        (7.1, "sent"),         # sent ChargePayment to payment
        (8.0, "received"),     # payment handled it
        (8.5, "error"),        # payment could not handle it
        (9.0, "scheduled"),    # the deadline timer
        (9.0, "compensation"),  # RefundPayment
    ]
    summaries = "\n".join(g[2] for g in got)
    assert "received OrderSubmitted: Initial → AwaitingReview" in summaries
    assert "payment handled ChargePayment" in summaries
    assert "ManualReview outcome: approved (by ann)" in summaries
    assert timeline.trace_ids == [TRACE_ID]
    [link] = timeline.executions
    assert link.console_url == (
        "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1"
        "#/v2/executions/details/arn:aws:states:eu-west-1:123456789012:execution:mr:x-1")
    dumped = timeline.model_dump_json()
    assert SECRET not in dumped and "taskToken" in dumped
    assert orjson.loads(dumped)["reviews"][0]["status"] == "pending"
