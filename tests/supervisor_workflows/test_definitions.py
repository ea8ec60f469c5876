"""The ASL builders: structure, placeholders, timings, derived retries, lint, Mermaid."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statelint.config import Config
from statelint.linter import Linter

import supervisor_workflows
from bridge.contracts import (
    REVIEW_REJECTED_ERROR,
    REVIEW_TASK_URN,
    SHIPPING_UNAVAILABLE_ERROR,
    SUPERVISION_COMPLETED_URN,
    SUPERVISION_STARTED_URN,
)
from supervisor_workflows import (
    SUBSTITUTIONS,
    WORKFLOWS,
    ManualReviewTimings,
    SlowShippingTimings,
    manual_review_definition,
    placeholders_in,
    render_definition,
    slow_shipping_definition,
    to_mermaid,
)

ROOT = Path(__file__).resolve().parents[2]
TIMEOUTS = ["States.Timeout", "States.HeartbeatTimeout"]
VALUES = {"ClaimTableName": "claims", "ReviewQueueUrl": "https://sqs/1/review",
          "ShippingQueueUrl": "https://sqs/1/shipping"}
FAST_REVIEW = ManualReviewTimings(review_timeout_seconds=3, escalation_timeout_seconds=2,
                                  delivery_timeout_seconds=4, delivery_max_attempts=1)
FAST_SHIPPING = SlowShippingTimings(deadline_seconds=10, interval_seconds=1, backoff_rate=2.0,
                                    max_delay_seconds=3, attempt_timeout_seconds=2,
                                    delivery_timeout_seconds=4, delivery_max_attempts=1)
DEFINITIONS: list[tuple[str, Callable[[], dict[str, Any]]]] = [
    ("ManualReview", manual_review_definition),
    ("ManualReview-fast", lambda: manual_review_definition(FAST_REVIEW)),
    ("SlowShipping", slow_shipping_definition),
    ("SlowShipping-fast", lambda: slow_shipping_definition(FAST_SHIPPING)),
]


def definitions() -> pytest.MarkDecorator:
    return pytest.mark.parametrize("definition", [build() for _, build in DEFINITIONS],
                                   ids=[name for name, _ in DEFINITIONS])


def targets(state: dict[str, Any]) -> Iterator[str]:
    yield from [state["Next"]] if "Next" in state else []
    yield from [state["Default"]] if "Default" in state else []
    yield from (rule["Next"] for rule in state.get("Choices", []))
    yield from (catch["Next"] for catch in state.get("Catch", []))


def walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in a nested template."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def sends(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: state for name, state in definition["States"].items()
            if str(state.get("Resource", "")).startswith("arn:aws:states:::sqs:sendMessage")}


# --- public API --------------------------------------------------------------------------

def test_the_public_api_the_cdk_app_uses() -> None:
    assert SUBSTITUTIONS == ("ClaimTableName", "ReviewQueueUrl", "ShippingQueueUrl")
    assert dict(WORKFLOWS) == {"ManualReview": manual_review_definition,
                               "SlowShipping": slow_shipping_definition}
    for name in supervisor_workflows.__all__:
        assert hasattr(supervisor_workflows, name)
    assert ManualReviewTimings() == ManualReviewTimings(2 * 86400, 86400, 3600, 5)
    assert SlowShippingTimings() == SlowShippingTimings(3600, 30, 2.0, 600, 300, 3600, 5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ManualReviewTimings().review_timeout_seconds = 1  # type: ignore[misc]


def test_each_workflow_uses_only_its_placeholders() -> None:
    assert placeholders_in(manual_review_definition()) == {"ClaimTableName", "ReviewQueueUrl"}
    assert placeholders_in(slow_shipping_definition()) == {"ClaimTableName",
                                                           "ShippingQueueUrl"}
    text = json.dumps(manual_review_definition())
    assert '"${ClaimTableName}"' in text and '"${ReviewQueueUrl}"' in text


def test_render_replaces_placeholders_and_escapes_values() -> None:
    rendered = json.loads(render_definition(manual_review_definition(),
                                            {**VALUES, "ClaimTableName": 'odd"name\\'}))
    claim = rendered["States"]["ClaimHandoff"]["Parameters"]
    assert claim["TableName"] == 'odd"name\\'
    review = rendered["States"]["AwaitReview"]["Parameters"]
    assert review["QueueUrl"] == "https://sqs/1/review"
    assert "${" not in json.dumps(rendered)


def test_render_names_a_missing_substitution() -> None:
    with pytest.raises(KeyError, match=r"\$\{ShippingQueueUrl\}"):
        render_definition(slow_shipping_definition(), {"ClaimTableName": "claims"})
    render_definition(slow_shipping_definition(), VALUES)  # extras are fine


# --- structure ---------------------------------------------------------------------------

@definitions()
def test_graph_is_closed_reachable_and_acyclic(definition: dict[str, Any]) -> None:
    states: dict[str, Any] = definition["States"]
    assert definition["StartAt"] == "ClaimHandoff"
    for name, state in states.items():
        for target in targets(state):
            assert target in states, f"{name} → {target} does not exist"
    seen: set[str] = set()
    stack = [definition["StartAt"]]
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(targets(states[name]))
    assert seen == set(states), f"unreachable: {set(states) - seen}"
    # No cycles: the history is bounded by the states and the retries, never by a loop.
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(name: str) -> None:
        assert name not in visiting, f"a loop through {name}"
        if name in done:
            return
        visiting.add(name)
        for target in targets(states[name]):
            visit(target)
        visiting.discard(name)
        done.add(name)

    visit(definition["StartAt"])


@definitions()
def test_claim_first_and_a_duplicate_ends_at_once(definition: dict[str, Any]) -> None:
    claim = definition["States"]["ClaimHandoff"]
    assert claim["Resource"] == "arn:aws:states:::dynamodb:putItem"
    assert claim["Parameters"]["TableName"] == "${ClaimTableName}"
    assert claim["Parameters"]["Item"]["handoffId"] == {"S.$": "$.handoffId"}
    assert claim["Parameters"]["ConditionExpression"] == "attribute_not_exists(handoffId)"
    assert claim["Catch"] == [{"ErrorEquals": ["DynamoDB.ConditionalCheckFailedException"],
                               "ResultPath": None, "Next": "AlreadyClaimed"}]
    for retry in claim["Retry"]:
        assert "States.TaskFailed" not in retry["ErrorEquals"]
        assert "States.ALL" not in retry["ErrorEquals"]
    assert definition["States"]["AlreadyClaimed"]["Type"] == "Succeed"


@definitions()
def test_choices_use_flat_paths(definition: dict[str, Any]) -> None:
    for state in definition["States"].values():
        for rule in state.get("Choices", []):
            assert "[" not in rule["Variable"]


@definitions()
def test_every_envelope_is_fresh_correlated_and_traced(definition: dict[str, Any]) -> None:
    found = sends(definition)
    assert found
    for name, state in found.items():
        body = state["Parameters"]["MessageBody"]
        assert body["messageId.$"] == "States.UUID()", name
        assert body["correlationId.$"] == "$.correlationId", name
        assert body["conversationId.$"] == "$.handoffId", name
        assert body["sentTime.$"] == "$$.State.EnteredTime", name
        assert "$.ctx.headers" in body["headers.$"], name  # traceparent when present
        assert "MessageAttributes.$" in state["Parameters"], name
        waits = state["Resource"].endswith(".waitForTaskToken")
        assert ("$$.Task.Token" in body["headers.$"]) == waits, name
        if waits:
            assert isinstance(state["TimeoutSeconds"], int), name


@definitions()
def test_the_context_carries_traceparent_only_when_present(definition: dict[str, Any]) -> None:
    states = definition["States"]
    choice = states["HasTraceparent"]
    assert choice["Choices"][0] == {"Variable": "$.traceparent", "IsPresent": False,
                                    "Next": "WithoutTraceparent"}
    with_trace = states["WithTraceparent"]["Parameters"]
    without = states["WithoutTraceparent"]["Parameters"]
    assert with_trace["headers"] == {"traceparent.$": "$.traceparent"}
    assert without["headers"] == {}
    assert without["traceparent"] is None
    assert set(with_trace) - {"traceparent.$"} == set(without) - {"traceparent"}
    for name, attributes in with_trace.items():
        if name.endswith("Attributes") and name != "traceAttributes":
            assert "traceparent" in attributes and "traceparent" not in without[name]
            assert without[name]["MessageType"] == attributes["MessageType"]


def _completed_messages(definition: dict[str, Any]) -> dict[str, Any]:
    deliver = definition["States"]["DeliverOutcome"]
    assert deliver["Resource"] == "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
    body: dict[str, Any] = deliver["Parameters"]["MessageBody"]
    assert body["messageType"] == SUPERVISION_COMPLETED_URN
    assert deliver["Parameters"]["QueueUrl.$"] == "$.replyTo"
    message: dict[str, Any] = body["message"]
    return message


@definitions()
def test_started_and_completed_match_the_contracts(definition: dict[str, Any]) -> None:
    from bridge.contracts import SupervisionCompleted, SupervisionStarted

    started = definition["States"]["ReportStarted"]
    assert started["Resource"] == "arn:aws:states:::sqs:sendMessage"
    assert started["Parameters"]["QueueUrl.$"] == "$.replyTo"
    body = started["Parameters"]["MessageBody"]
    assert body["messageType"] == SUPERVISION_STARTED_URN
    keys = {k.removesuffix(".$") for k in body["message"]}
    assert keys == {f.alias for f in SupervisionStarted.model_fields.values()}
    assert body["message"]["executionArn.$"] == "$$.Execution.Id"
    completed = _completed_messages(definition)
    assert {k.removesuffix(".$") for k in completed} == {
        f.alias for f in SupervisionCompleted.model_fields.values()}
    assert completed["taskToken.$"] == "$$.Task.Token"


def test_manual_review_waits_escalates_once_and_delivers() -> None:
    timings = ManualReviewTimings(review_timeout_seconds=111, escalation_timeout_seconds=22,
                                  delivery_timeout_seconds=33, delivery_max_attempts=4)
    states = manual_review_definition(timings)["States"]
    review, escalated = states["AwaitReview"], states["AwaitEscalatedReview"]
    for state, flag, timeout, on_timeout in ((review, False, 111, "AwaitEscalatedReview"),
                                            (escalated, True, 22, "TimedOut")):
        assert state["Resource"] == "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
        assert state["Parameters"]["QueueUrl"] == "${ReviewQueueUrl}"
        body = state["Parameters"]["MessageBody"]
        assert body["messageType"] == REVIEW_TASK_URN
        assert body["message"]["escalated"] is flag
        assert body["message"]["taskToken.$"] == "$$.Task.Token"
        assert state["TimeoutSeconds"] == timeout
        assert state["Catch"] == [
            {"ErrorEquals": [REVIEW_REJECTED_ERROR], "ResultPath": "$.review",
             "Next": "Rejected"},
            {"ErrorEquals": TIMEOUTS, "ResultPath": "$.review", "Next": on_timeout}]
        assert state["Next"] == "CheckDecision"
    assert states["CheckDecision"]["Type"] == "Choice"
    assert states["Approved"]["Parameters"]["outcome"] == "approved"
    assert states["Rejected"]["Parameters"]["outcome"] == "rejected"
    assert states["Rejected"]["Parameters"]["result"]["cause.$"] == "$.review.Cause"
    assert states["NotApproved"]["Parameters"]["outcome"] == "rejected"
    assert states["TimedOut"]["Parameters"]["outcome"] == "timed_out"
    deliver = states["DeliverOutcome"]
    assert deliver["TimeoutSeconds"] == 33
    timeout_retry = [r for r in deliver["Retry"] if r["ErrorEquals"] == TIMEOUTS]
    assert timeout_retry and timeout_retry[0]["MaxAttempts"] == 4
    assert states["Delivered"]["End"] is True
    assert states["OutcomeNotDelivered"]["Type"] == "Fail"


def test_slow_shipping_retries_within_the_deadline() -> None:
    states = slow_shipping_definition(FAST_SHIPPING)["States"]
    request = states["RequestShipment"]
    assert request["Resource"] == "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
    assert request["Parameters"]["QueueUrl"] == "${ShippingQueueUrl}"
    body = request["Parameters"]["MessageBody"]
    assert body["messageType.$"] == "$.payload.commandType"
    assert body["message.$"] == "$.payload.command"
    assert request["TimeoutSeconds"] == 2
    retry = [r for r in request["Retry"] if SHIPPING_UNAVAILABLE_ERROR in r["ErrorEquals"]]
    assert retry == [{"ErrorEquals": [SHIPPING_UNAVAILABLE_ERROR, *TIMEOUTS],
                      "IntervalSeconds": 1, "MaxAttempts": FAST_SHIPPING.max_attempts,
                      "BackoffRate": 2.0, "MaxDelaySeconds": 3, "JitterStrategy": "FULL"}]
    assert request["Catch"] == [{"ErrorEquals": [SHIPPING_UNAVAILABLE_ERROR, *TIMEOUTS],
                                 "ResultPath": "$.shipment", "Next": "ShippingFailed"}]
    assert states["Shipped"]["Parameters"] == {"outcome": "shipped", "result.$": "$.shipment"}
    assert states["ShippingFailed"]["Parameters"]["outcome"] == "failed"
    assert states["InvalidShippingRequest"]["Parameters"]["outcome"] == "failed"


# --- timings -----------------------------------------------------------------------------

def test_default_retries_fit_the_deadline() -> None:
    timings = SlowShippingTimings()
    assert timings.retry_delays == (30, 60, 120, 240, 480, 600, 600, 600, 600)
    assert timings.max_attempts == 9
    assert sum(timings.retry_delays) == 3330 <= 3600 < 3330 + 600


@pytest.mark.parametrize(("kwargs", "attempts"), [
    ({"deadline_seconds": 10, "interval_seconds": 1, "backoff_rate": 2.0,
      "max_delay_seconds": 3}, 4),                      # 1 + 2 + 3 + 3 = 9
    ({"deadline_seconds": 10, "interval_seconds": 1, "backoff_rate": 1.0}, 10),
    ({"deadline_seconds": 5, "interval_seconds": 10}, 0),  # no time for a retry
    ({"deadline_seconds": 7, "interval_seconds": 1, "backoff_rate": 2.0}, 3),  # 1 + 2 + 4
    ({"deadline_seconds": 86400, "interval_seconds": 60, "backoff_rate": 1.5,
      "max_delay_seconds": 3600}, 32),     # 60 … 2306.25, then 3600 × 20
])
def test_derived_max_attempts(kwargs: dict[str, Any], attempts: int) -> None:
    assert SlowShippingTimings(**kwargs).max_attempts == attempts


@settings(max_examples=200, deadline=None)
@given(deadline=st.integers(1, 200_000), interval=st.integers(1, 5000),
       rate=st.floats(1.0, 10.0), max_delay=st.integers(1, 20_000))
def test_retry_delays_never_pass_the_deadline(deadline: int, interval: int, rate: float,
                                              max_delay: int) -> None:
    try:
        timings = SlowShippingTimings(deadline_seconds=deadline, interval_seconds=interval,
                                      backoff_rate=rate, max_delay_seconds=max_delay)
    except ValueError as error:
        assert "deadline_seconds" in str(error)  # too many retries for the history
        return
    delays = timings.retry_delays
    assert sum(delays) <= deadline
    assert len(delays) == timings.max_attempts <= supervisor_workflows.MAX_SHIPPING_RETRIES
    assert all(0 < d <= max_delay for d in delays)
    exponent = len(delays) * math.log(rate)
    next_delay = min(interval * math.exp(exponent) if exponent < 700 else math.inf, max_delay)
    assert sum(delays) + next_delay > deadline - 1e-6  # as many as fit


@pytest.mark.parametrize(("cls", "field", "value"), [
    (ManualReviewTimings, "review_timeout_seconds", 0),
    (ManualReviewTimings, "escalation_timeout_seconds", -5),
    (ManualReviewTimings, "delivery_timeout_seconds", 1.5),
    (ManualReviewTimings, "delivery_max_attempts", -1),
    (ManualReviewTimings, "delivery_max_attempts", 1000),
    (ManualReviewTimings, "review_timeout_seconds", True),
    (SlowShippingTimings, "deadline_seconds", 0),
    (SlowShippingTimings, "interval_seconds", 0),
    (SlowShippingTimings, "backoff_rate", 0.5),
    (SlowShippingTimings, "backoff_rate", float("nan")),
    (SlowShippingTimings, "max_delay_seconds", 0),
    (SlowShippingTimings, "attempt_timeout_seconds", 0),
    (SlowShippingTimings, "delivery_timeout_seconds", "60"),
    (SlowShippingTimings, "delivery_max_attempts", -1),
])
def test_invalid_timings_name_the_field(cls: type[Any], field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        cls(**{field: value})


def test_too_many_retries_for_the_history_limit() -> None:
    with pytest.raises(ValueError, match=r"deadline_seconds.*history"):
        SlowShippingTimings(deadline_seconds=100_000, interval_seconds=1, backoff_rate=1.0)


def test_worst_cases_stay_within_a_year() -> None:
    assert ManualReviewTimings().worst_case_seconds == 172800 + 86400 + 3600 * 6
    assert SlowShippingTimings().worst_case_seconds == 3330 + 300 * 10 + 3600 * 6
    with pytest.raises(ValueError, match="one year"):
        ManualReviewTimings(review_timeout_seconds=300 * 86400,
                            escalation_timeout_seconds=100 * 86400)


# --- lint --------------------------------------------------------------------------------

@definitions()
def test_statelint_accepts_the_definition(definition: dict[str, Any]) -> None:
    assert Linter.validate(definition, Config()) == []
    rendered = render_definition(definition, VALUES)
    assert Linter.validate(rendered, Config()) == []


def test_statelint_catches_a_broken_definition() -> None:
    broken = manual_review_definition()
    broken["States"]["AwaitReview"]["TimeoutSeconds"] = "soon"
    broken["States"]["Approved"]["Next"] = "Nowhere"
    problems = Linter.validate(broken, Config())
    assert any("TimeoutSeconds" in p for p in problems)
    assert any("Nowhere" in p for p in problems)


def test_definitions_are_small() -> None:
    for build in WORKFLOWS.values():
        assert len(render_definition(build(), VALUES)) < 64 * 1024  # limit: 1 MB


# --- Mermaid -----------------------------------------------------------------------------

@definitions()
def test_mermaid_shows_every_state_and_transition(definition: dict[str, Any]) -> None:
    chart = to_mermaid(definition)
    assert chart.startswith("flowchart TD\n")
    for name, state in definition["States"].items():
        assert f"    {name}" in chart
        for target in targets(state):
            assert f"| {target}" in chart or f"{name} --> {target}" in chart
    assert "start --> ClaimHandoff" in chart
    assert '-.->|"DynamoDB.ConditionalCheckFailedException"| AlreadyClaimed' in chart


def test_docs_show_the_current_graphs() -> None:
    docs = (ROOT / "docs" / "supervision.md").read_text()
    for name, build in WORKFLOWS.items():
        chart = to_mermaid(build())
        assert f"```mermaid\n{chart}```" in docs, (
            f"docs/supervision.md is out of date for {name}: paste the output of "
            f"`python -m supervisor_workflows mermaid {name}`")
