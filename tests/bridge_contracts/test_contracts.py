"""The EventBridge contracts: wire names, tolerance, immutability, secrecy, ids, limits."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bridge.contracts import (
    DETAIL_TYPES,
    EVENT_SOURCE_PREFIX,
    MAX_EVENTBRIDGE_ENTRY_BYTES,
    MAX_STEP_FUNCTIONS_INPUT_BYTES,
    REDACTED,
    REVIEW_TASK_URN,
    SUPERVISION_COMPLETED_URN,
    SUPERVISION_STARTED_URN,
    PayloadTooLargeError,
    ReviewDecision,
    ReviewTask,
    SupervisionCompleted,
    SupervisionRequested,
    SupervisionStarted,
    check_eventbridge_entry_size,
    check_step_functions_size,
    event_source,
    handoff_id,
)
from core_saga import Envelope
from core_saga.extension import decode_envelope

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAeXAMPLEtoken+/="
EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:mr:x"


def request(**changes: Any) -> SupervisionRequested:
    fields: dict[str, Any] = {
        "handoff_id": handoff_id("OrderToCash", "o-1", "ManualReview"),
        "saga_type": "OrderToCash", "correlation_id": "o-1", "workflow": "ManualReview",
        "reason": "order over 10,000", "payload": {"orderId": "o-1", "amount": 12000},
        "reply_to": "https://sqs.eu-west-1.amazonaws.com/123456789012/order-saga",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    fields.update(changes)
    return SupervisionRequested(**fields)


def completed(**changes: Any) -> SupervisionCompleted:
    data = request().model_dump()
    data.update(execution_arn="arn:aws:states:eu-west-1:123456789012:execution:mr:x",
                outcome="approved", result={"reviewer": "ann"}, task_token=TOKEN)
    data.update(changes)
    return SupervisionCompleted(**data)


def test_the_wire_form_is_camel_case_and_python_names_are_snake_case() -> None:
    wire = json.loads(request().detail_json())
    assert set(wire) == {"schemaVersion", "handoffId", "sagaType", "correlationId",
                         "workflow", "reason", "payload", "replyTo", "traceparent"}
    assert wire["schemaVersion"] == 1
    again = SupervisionRequested.model_validate(wire)  # by alias
    assert again == request()
    assert request(saga_type="X").saga_type == "X"  # populate_by_name


def test_readers_ignore_fields_a_newer_producer_added() -> None:
    wire = json.loads(completed().detail_json())
    wire["escalationLevel"] = 3
    wire["result"]["carrier"] = "dhl"
    read = SupervisionCompleted.model_validate(wire)
    assert not hasattr(read, "escalation_level")
    assert read.result == {"reviewer": "ann", "carrier": "dhl"}


def test_contracts_are_frozen() -> None:
    with pytest.raises(ValidationError):
        request().reason = "changed"  # type: ignore[misc]


def test_workflow_and_outcome_are_closed_sets() -> None:
    with pytest.raises(ValidationError, match="workflow"):
        request(workflow="Refund")
    with pytest.raises(ValidationError, match="outcome"):
        completed(outcome="maybe")
    for outcome in ("approved", "rejected", "timed_out", "shipped", "failed"):
        assert completed(outcome=outcome).outcome == outcome


def test_started_adds_the_execution() -> None:
    data = request().model_dump()
    started = SupervisionStarted(**data, execution_arn=EXECUTION,
                                 started_at="2026-01-05T10:00:00.123Z")
    assert started.started_at.tzinfo is not None
    assert json.loads(started.detail_json())["executionArn"] == EXECUTION


def test_the_task_token_never_shows_in_repr_str_or_redacted() -> None:
    event = completed()
    assert TOKEN not in repr(event)
    assert TOKEN not in str(event)
    assert TOKEN not in json.dumps(event.redacted())
    assert event.redacted()["taskToken"] == REDACTED
    assert event.task_token == TOKEN  # still on the wire
    assert json.loads(event.detail_json())["taskToken"] == TOKEN
    task = ReviewTask(handoff_id="h", correlation_id="c", saga_type="S", reason="r",
                      payload={}, escalated=False, execution_arn=EXECUTION, task_token=TOKEN)
    assert TOKEN not in repr(task)
    assert task.redacted()["taskToken"] == REDACTED


def test_urns_are_the_ones_in_the_contracts_notes() -> None:
    notes = (ROOT / "docs" / "contracts-notes.md").read_text()
    for urn in (SUPERVISION_STARTED_URN, SUPERVISION_COMPLETED_URN, REVIEW_TASK_URN):
        assert urn in notes
    assert SupervisionStarted.message_urn == SUPERVISION_STARTED_URN
    assert SupervisionCompleted.message_urn == SUPERVISION_COMPLETED_URN
    assert ReviewTask.message_urn == REVIEW_TASK_URN
    assert DETAIL_TYPES == ("SupervisionRequested", "SupervisionStarted",
                            "SupervisionCompleted")
    assert SupervisionRequested.detail_type == "SupervisionRequested"


def test_a_saga_reads_the_replies_as_envelopes() -> None:
    event = completed()
    body = Envelope(message=event, correlation_id="o-1",
                    headers={"taskToken": TOKEN}).encode()
    read = decode_envelope(body)
    assert isinstance(read.message, SupervisionCompleted)
    assert read.message == event
    assert read.message_type == SUPERVISION_COMPLETED_URN


def test_review_decision_defaults_to_approved() -> None:
    decision = ReviewDecision(reviewer="ann", comment="ok")
    assert decision.to_wire() == {"decision": "approved", "reviewer": "ann", "comment": "ok"}


def test_handoff_id_is_deterministic_and_distinguishes_its_inputs() -> None:
    first = handoff_id("OrderToCash", "o-1", "ManualReview")
    assert first == handoff_id("OrderToCash", "o-1", "ManualReview", 1)
    # Pinned: the namespace must never change, or in-flight hand-offs get new ids.
    assert first == "023f8860-9837-5599-b467-43de69ee275a"
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                        first)
    others = {handoff_id("OrderToCash", "o-2", "ManualReview"),
              handoff_id("OrderToCash", "o-1", "SlowShipping"),
              handoff_id("OrderToCash", "o-1", "ManualReview", 2),
              handoff_id("Returns", "o-1", "ManualReview")}
    assert first not in others and len(others) == 4


@pytest.mark.parametrize("args", [("", "o-1", "ManualReview", 1),
                                  ("S", "", "ManualReview", 1),
                                  ("S", "o-1", "Nope", 1),
                                  ("S", "o-1", "ManualReview", 0)])
def test_handoff_id_rejects_bad_inputs(args: tuple[str, str, str, int]) -> None:
    with pytest.raises(ValueError):
        handoff_id(*args)


def test_event_source() -> None:
    assert EVENT_SOURCE_PREFIX == "stepsaga."
    assert event_source("OrderToCash") == "stepsaga.OrderToCash"
    with pytest.raises(ValueError):
        event_source("")


def test_a_detail_over_256_kib_is_refused_naming_the_handoff_and_sizes() -> None:
    assert MAX_STEP_FUNCTIONS_INPUT_BYTES == 262144
    assert MAX_EVENTBRIDGE_ENTRY_BYTES == 1048576
    small = request()
    assert small.check_size() == small.detail_json()
    big = request(payload={"blob": "x" * MAX_STEP_FUNCTIONS_INPUT_BYTES})
    with pytest.raises(PayloadTooLargeError) as caught:
        big.check_size()
    error = caught.value
    assert error.handoff_id == big.handoff_id
    assert error.size == len(big.detail_json()) and error.limit == 262144
    assert big.handoff_id in str(error) and str(error.size) in str(error)
    assert "262144" in str(error)
    with pytest.raises(PayloadTooLargeError) as from_bytes:  # id read from the detail
        check_step_functions_size(big.detail_json())
    assert from_bytes.value.handoff_id == big.handoff_id


def test_the_limits_are_configurable_at_the_call_site() -> None:
    detail = request().detail_json()
    check_step_functions_size(detail, limit=len(detail))
    with pytest.raises(PayloadTooLargeError):
        check_step_functions_size(detail, limit=len(detail) - 1)
    check_eventbridge_entry_size(b"x" * 300_000)  # over 256 KB, under 1 MB
    with pytest.raises(PayloadTooLargeError, match="EventBridge"):
        check_eventbridge_entry_size(b"x" * 300_000, limit=256 * 1024, handoff_id="h-1")
    with pytest.raises(PayloadTooLargeError, match="without a handoffId"):
        check_step_functions_size(b"not json" * 10, limit=10)
