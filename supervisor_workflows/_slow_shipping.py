"""The SlowShipping workflow: ask the shipping service for a label, retrying with backoff
inside a deadline."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bridge.contracts import (
    SHIPPING_UNAVAILABLE_ERROR,
    SUPERVISION_COMPLETED_URN,
    SUPERVISION_STARTED_URN,
)

from ._asl import (
    CLAIM,
    MAX_DELIVERY_ATTEMPTS,
    MAX_EXECUTION_SECONDS,
    REPORT_STARTED,
    SHIPPING_QUEUE,
    SQS_RETRY_ERRORS,
    TIMEOUT_ERRORS,
    TOKEN_HEADERS,
    catcher,
    check_seconds,
    claim_states,
    completion,
    context_states,
    delivery_states,
    envelope,
    placeholder,
    report_started_state,
    retrier,
)

CHECK_REQUEST = "CheckShippingRequest"
INVALID_REQUEST = "InvalidShippingRequest"
PREPARE_SHIPMENT = "PrepareShipment"
REQUEST_SHIPMENT = "RequestShipment"
CHECK_SHIPMENT = "CheckShipment"
SHIPPED = "Shipped"
SHIPPING_FAILED = "ShippingFailed"
INVALID_ANSWER = "InvalidShippingAnswer"

MAX_SHIPPING_RETRIES = 1000
"""Upper bound on the derived retries: each attempt costs ~5 of the 25,000 history
events an execution may have."""
MAX_DELAY_LIMIT = 31_622_401
"""The largest ``MaxDelaySeconds`` ASL accepts."""


def _retry_delays(interval: int, rate: float, max_delay: int, limit: int) -> list[float]:
    """The (unjittered) delay before each retry until their sum would pass `limit`."""
    delays: list[float] = []
    total = 0.0
    delay = float(interval)
    while len(delays) <= MAX_SHIPPING_RETRIES:
        step = min(delay, float(max_delay))
        if total + step > limit:
            break
        delays.append(step)
        total += step
        delay *= rate
    return delays


@dataclass(frozen=True)
class SlowShippingTimings:
    """How SlowShipping retries, in seconds.

    Each attempt waits ``attempt_timeout_seconds`` for the shipping service's answer. A
    ``ShippingUnavailable`` failure (or a timeout) is retried after ``interval_seconds``,
    growing by ``backoff_rate`` up to ``max_delay_seconds`` (full jitter on AWS).
    :attr:`max_attempts` — the number of retries — is derived: as many as keep the sum of
    the (unjittered, i.e. longest) retry delays within ``deadline_seconds``. The outcome
    is delivered with ``delivery_timeout_seconds``, retried ``delivery_max_attempts`` times.
    """

    deadline_seconds: int = 3600
    interval_seconds: int = 30
    backoff_rate: float = 2.0
    max_delay_seconds: int = 600
    attempt_timeout_seconds: int = 300
    delivery_timeout_seconds: int = 3600
    delivery_max_attempts: int = 5

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_seconds(owner, "deadline_seconds", self.deadline_seconds,
                      maximum=MAX_EXECUTION_SECONDS)
        check_seconds(owner, "interval_seconds", self.interval_seconds,
                      maximum=MAX_EXECUTION_SECONDS)
        rate = self.backoff_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(
                rate) or not 1.0 <= rate <= 1000.0:
            raise ValueError(f"{owner}.backoff_rate must be a number between 1.0 and 1000.0, "
                             f"got {rate!r}")
        check_seconds(owner, "max_delay_seconds", self.max_delay_seconds,
                      maximum=MAX_DELAY_LIMIT)
        check_seconds(owner, "attempt_timeout_seconds", self.attempt_timeout_seconds,
                      maximum=MAX_EXECUTION_SECONDS)
        check_seconds(owner, "delivery_timeout_seconds", self.delivery_timeout_seconds,
                      maximum=MAX_EXECUTION_SECONDS)
        check_seconds(owner, "delivery_max_attempts", self.delivery_max_attempts,
                      minimum=0, maximum=MAX_DELIVERY_ATTEMPTS)
        if self.max_attempts > MAX_SHIPPING_RETRIES:
            raise ValueError(
                f"{owner}.deadline_seconds={self.deadline_seconds} allows more than "
                f"{MAX_SHIPPING_RETRIES} retries at interval_seconds={self.interval_seconds}, "
                f"backoff_rate={self.backoff_rate}, max_delay_seconds={self.max_delay_seconds}"
                f"; raise the interval or shorten the deadline (history limit: 25,000 events)")
        if self.worst_case_seconds > MAX_EXECUTION_SECONDS:
            raise ValueError(f"{owner}: the worst case ({self.worst_case_seconds} s) exceeds a "
                             "Standard execution's one year")

    @property
    def retry_delays(self) -> tuple[float, ...]:
        """The longest delay before each retry (full jitter waits between 0 and this)."""
        return tuple(_retry_delays(self.interval_seconds, float(self.backoff_rate),
                                   self.max_delay_seconds, self.deadline_seconds))

    @property
    def max_attempts(self) -> int:
        """ASL ``MaxAttempts``: retries (after the first attempt) whose delays fit in the
        deadline."""
        return len(self.retry_delays)

    @property
    def worst_case_seconds(self) -> int:
        """The longest an execution can run: every attempt times out, every delay is
        full, and every delivery times out."""
        return math.ceil(sum(self.retry_delays)
                         + self.attempt_timeout_seconds * (self.max_attempts + 1)
                         + self.delivery_timeout_seconds * (self.delivery_max_attempts + 1))


def slow_shipping_definition(timings: SlowShippingTimings = SlowShippingTimings()
                             ) -> dict[str, Any]:
    """The SlowShipping state machine (ASL, JSONPath) with ``${ClaimTableName}`` and
    ``${ShippingQueueUrl}`` placeholders.

    Claim → report Started → check the request (``payload.commandType``, a URN, and
    ``payload.command``) → send the command to the shipping service in an envelope with
    ``taskToken`` and ``traceparent`` headers (waitForTaskToken). SendTaskSuccess
    ``{"trackingId": ...}`` ends ``shipped``; SendTaskFailure ``ShippingUnavailable`` and
    timeouts are retried with backoff and full jitter within the deadline, then end
    ``failed``. The outcome is delivered to the saga and the execution ends when it
    acknowledges. Other task failures fail the execution (operators redrive it).
    """
    states: dict[str, Any] = {}
    states.update(claim_states())
    states.update(context_states(REPORT_STARTED, {
        "startedAttributes": SUPERVISION_STARTED_URN,
        "completedAttributes": SUPERVISION_COMPLETED_URN}))
    states.update(report_started_state(CHECK_REQUEST))
    states[CHECK_REQUEST] = {
        "Type": "Choice",
        "Comment": "The payload must carry commandType (a URN) and command.",
        "Choices": [
            {"Variable": "$.payload.commandType", "IsPresent": False, "Next": INVALID_REQUEST},
            {"Variable": "$.payload.commandType", "IsString": False, "Next": INVALID_REQUEST},
            {"Variable": "$.payload.command", "IsPresent": False, "Next": INVALID_REQUEST},
        ],
        "Default": PREPARE_SHIPMENT,
    }
    states[INVALID_REQUEST] = completion("failed", {
        "error": "InvalidShippingRequest",
        "cause": "payload.commandType (a string) and payload.command are required"})
    states[PREPARE_SHIPMENT] = {
        "Type": "Pass",
        "Parameters": {"MessageType": {"DataType": "String",
                                       "StringValue.$": "$.payload.commandType"}},
        "ResultPath": "$.ctx.shipmentAttributes",
        "Next": REQUEST_SHIPMENT,
    }
    retried = [SHIPPING_UNAVAILABLE_ERROR, *TIMEOUT_ERRORS]
    states[REQUEST_SHIPMENT] = {
        "Type": "Task",
        "Comment": f"Ask the shipping service for a label; retried up to "
                   f"{timings.max_attempts} times within {timings.deadline_seconds} s.",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {
            "QueueUrl": placeholder(SHIPPING_QUEUE),
            "MessageBody": envelope(message_type="$.payload.commandType", dynamic_type=True,
                                    message="$.payload.command", headers=TOKEN_HEADERS),
            "MessageAttributes.$": "States.JsonMerge($.ctx.shipmentAttributes, "
                                   "$.ctx.traceAttributes, false)",
        },
        "TimeoutSeconds": timings.attempt_timeout_seconds,
        "ResultPath": "$.shipment",
        "Retry": [
            retrier(SQS_RETRY_ERRORS),
            retrier(retried, interval=timings.interval_seconds,
                    max_attempts=timings.max_attempts, backoff=timings.backoff_rate,
                    max_delay=timings.max_delay_seconds, jitter=True),
        ],
        "Catch": [catcher(retried, SHIPPING_FAILED, "$.shipment")],
        "Next": CHECK_SHIPMENT,
    }
    states[CHECK_SHIPMENT] = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.shipment.trackingId", "IsPresent": True,
                     "Next": SHIPPED}],
        "Default": INVALID_ANSWER,
    }
    states[SHIPPED] = completion("shipped", "$.shipment")
    states[SHIPPING_FAILED] = completion("failed", {
        "error.$": "$.shipment.Error", "cause.$": "$.shipment.Cause",
        "retries": timings.max_attempts, "deadlineSeconds": timings.deadline_seconds})
    states[INVALID_ANSWER] = completion("failed", {
        "error": "InvalidShippingAnswer", "answer.$": "$.shipment"})
    states.update(delivery_states(timeout_seconds=timings.delivery_timeout_seconds,
                                  max_attempts=timings.delivery_max_attempts))
    return {
        "Comment": "stepsaga SlowShipping: create the shipping label, retrying with backoff "
                   "inside a deadline; the outcome goes back to the saga.",
        "StartAt": CLAIM,
        "States": states,
    }
