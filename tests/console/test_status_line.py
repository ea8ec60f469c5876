"""The order's status in one line, on the Order-to-Cash saga's model: what it waits for
(which message, which timer and when it fires, which hand-off since when), or why it
ended, and the action that fits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bridge._handoffs import HandoffRecord
from bridge.timeline import Timeline, TimelineEntry, status_line
from core_saga.extension import SEND_KIND
from core_saga.persistence import OutboxRow
from examples.order_to_cash.saga import OrderSaga

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MODEL = OrderSaga.model


def _timeline(state: str, **data: Any) -> Timeline:
    return Timeline(saga_type="OrderSaga", correlation_id="o-1", state=state, version=3,
                    created_at=NOW - timedelta(hours=1), updated_at=NOW - timedelta(minutes=4),
                    finished=False, data=data, handoffs=[], entries=[], executions=[],
                    trace_ids=[], reviews=[])


def _timer(message: str, due: datetime) -> OutboxRow:
    return OutboxRow(id=7, message_id="m-7", kind=SEND_KIND, destination="orders",
                     message_type=f"urn:message:order_to_cash:{message}:v1",
                     correlation_id="o-1", body=b"{}", deliver_at=due,
                     created_at=NOW - timedelta(minutes=4))


def _line(timeline: Timeline, rows: list[OutboxRow] | None = None,
          handoffs: list[HandoffRecord] | None = None) -> str:
    return status_line(timeline, model=MODEL, rows=rows or [], reviews=[],
                       handoffs=handoffs or [], now=NOW)


def test_waiting_for_a_message_names_it_and_not_the_operator_cancel() -> None:
    line = _line(_timeline("PaymentPending"))
    assert line == "in PaymentPending since 4 min, waiting for PaymentCharged, PaymentDeclined"


def test_a_timer_comes_with_the_messages_it_is_the_deadline_of() -> None:
    rows = [_timer("ShipmentDeadlineExpired", NOW + timedelta(hours=2))]
    line = _line(_timeline("ShippingPending"), rows)
    assert line == ("waiting for ShipmentCreated, ShipmentFailed or timer "
                    "ShipmentDeadlineExpired, fires at 2026-03-01 14:00:00 UTC (in 2 h 0 min)"
                    " — resume fires it now")


def test_a_hand_off_not_started_points_to_retry_and_a_running_one_to_abort() -> None:
    lost = HandoffRecord(handoff_id="h-1", workflow="SlowShipping", reason="slow",
                         requested_at=NOW - timedelta(minutes=5))
    assert _line(_timeline("AwaitingShippingSupervision"), handoffs=[lost]) == (
        "hand-off to SlowShipping not started for 5 min — retry the hand-off, or check its "
        "EventBridge rule")
    running = lost.model_copy(update={"execution_arn": "arn:aws:states:x",
                                      "started_at": NOW - timedelta(minutes=3)})
    assert _line(_timeline("AwaitingShippingSupervision"), handoffs=[running]) == (
        "waiting for SlowShipping since 3 min — see its execution, or abort it")


def test_an_ended_order_says_why() -> None:
    line = _line(_timeline("Canceled", cancel_code="operator_canceled",
                           cancel_reason="canceled by olga: customer called"))
    assert line == "ended Canceled: operator_canceled (canceled by olga: customer called)"


def test_a_poison_message_points_to_redrive_until_it_is_redriven() -> None:
    step = TimelineEntry(kind="transition", at=NOW - timedelta(minutes=4), source="saga",
                         summary="Submitted → PaymentPending")
    error = TimelineEntry(kind="error", at=NOW - timedelta(minutes=2), source="errors",
                          summary="orders could not handle PaymentCharged: ValueError: bad",
                          details={"errorId": 12})
    timeline = _timeline("PaymentPending").model_copy(update={"entries": [step, error]})
    assert _line(timeline) == ("orders could not handle PaymentCharged: ValueError: bad — "
                               "fix the cause, then redrive it from Errors")
    redriven = TimelineEntry(kind="operator", at=NOW - timedelta(minutes=1), source="audit",
                             summary="otto: redrive error:12: redriven",
                             details={"action": "redrive", "target": "error:12",
                                      "outcome": "redriven"})
    timeline = timeline.model_copy(update={"entries": [step, error, redriven]})
    assert _line(timeline).startswith("in PaymentPending since 4 min, waiting for ")
    # An error before the saga's last step is history, not why it waits.
    later = step.model_copy(update={"at": NOW})
    timeline = timeline.model_copy(update={"entries": [error, later]})
    assert _line(timeline).startswith("in PaymentPending since 4 min, waiting for ")


def test_a_cancel_the_saga_has_not_taken_yet_says_so() -> None:
    step = TimelineEntry(kind="transition", at=NOW - timedelta(minutes=4), source="saga",
                         summary="Submitted → PaymentPending")
    asked = TimelineEntry(kind="operator", at=NOW - timedelta(minutes=2), source="audit",
                          summary="olga: cancel o-1: requested — customer called",
                          details={"action": "cancel", "actor": "olga",
                                   "outcome": "requested", "detail": {"messageId": "m-9"}})
    timeline = _timeline("PaymentPending").model_copy(update={"entries": [step, asked]})
    assert _line(timeline) == ("cancel requested by olga 2 min ago, not yet taken by the "
                               "saga (in PaymentPending) — look at its queue and Errors")
    taken = step.model_copy(update={"at": NOW, "summary": "PaymentPending → "
                                    "CompensatingPayment"})
    timeline = timeline.model_copy(update={"entries": [step, asked, taken]})
    assert _line(timeline).startswith("in PaymentPending since 4 min")
    # Ignored where the saga already compensates: handled (the inbox), not in flight.
    handled = TimelineEntry(kind="received", at=NOW - timedelta(minutes=1), source="inbox",
                            summary="OrderSaga handled OperatorCancel",
                            details={"messageId": "m-9"})
    timeline = timeline.model_copy(update={"entries": [step, asked, handled]})
    assert _line(timeline).startswith("in PaymentPending since 4 min")
    # The same read from the inbox's records (the cancel never went through the outbox).
    timeline = timeline.model_copy(update={"entries": [step, asked]})
    assert status_line(timeline, model=MODEL, rows=[], reviews=[], handoffs=[], now=NOW,
                       handled={"m-9": []}).startswith("in PaymentPending since 4 min")
