"""Which ``supervision_lost`` endings the supervision faults of a run explain: exactly
the cause each fault brings about, for exactly the orders it touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge import HandoffRecord

from .invariants import SupervisionFaults

T0 = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
RULES_OFF = (T0.timestamp(), (T0 + timedelta(seconds=20)).timestamp())


def lost(cause: str, first: float, given_up: float) -> HandoffRecord:
    return HandoffRecord(handoff_id="h", workflow="ManualReview", reason="r",
                         requested_at=T0 + timedelta(seconds=first), publishes=4,
                         lost=cause, lost_at=T0 + timedelta(seconds=given_up))


def test_a_hand_off_published_while_the_rules_were_off_may_be_lost_not_started() -> None:
    faults = SupervisionFaults(rule_off=[RULES_OFF])
    assert faults.explains("rel-1", [lost("not_started", 1, 21)])
    assert faults.explains("rel-1", [lost("not_started", -10, 10)])  # re-published into it


def test_a_hand_off_lost_outside_the_window_or_for_another_cause_is_not_explained() -> None:
    faults = SupervisionFaults(rule_off=[RULES_OFF], slack=2)
    assert not faults.explains("rel-1", [lost("not_started", 30, 50)])  # after it
    assert not faults.explains("rel-1", [lost("not_started", -40, -20)])  # before it
    assert not faults.explains("rel-1", [lost("execution_aborted", 1, 2)])  # not stopped
    assert not faults.explains("rel-1", [lost("execution_failed", 1, 2)])
    assert not SupervisionFaults().explains("rel-1", [lost("not_started", 1, 21)])


def test_a_stopped_execution_explains_execution_aborted_for_its_order_only() -> None:
    faults = SupervisionFaults(aborted={"rel-1"})
    assert faults.explains("rel-1", [lost("execution_aborted", 1, 2)])
    assert not faults.explains("rel-2", [lost("execution_aborted", 1, 2)])
    assert not faults.explains("rel-1", [lost("not_started", 1, 21)])
    assert not faults.explains("rel-1", [lost("execution_timed_out", 1, 2)])
