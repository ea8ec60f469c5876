"""SlowShipping on the emulator (moto 5.2.5 executing the rendered ASL): the shipping
service recovers within the deadline, never recovers, stays silent once; a request
without a command."""

from __future__ import annotations

import json
import uuid

import pytest

from bridge.contracts import (
    SHIPPING_UNAVAILABLE_ERROR,
    SUPERVISION_COMPLETED_URN,
    SUPERVISION_STARTED_URN,
    SupervisionRequested,
)
from supervisor_workflows import SlowShippingTimings

from .conftest import MakeSupervision, Received, Supervision

pytestmark = pytest.mark.emulator

FAST = SlowShippingTimings(deadline_seconds=4, interval_seconds=1, backoff_rate=2.0,
                           max_delay_seconds=2, attempt_timeout_seconds=2,
                           delivery_timeout_seconds=4, delivery_max_attempts=1)
CREATE_LABEL = "urn:message:order_to_cash.shipping:CreateShippingLabel:v1"


def test_fast_timings_allow_two_retries() -> None:
    assert FAST.retry_delays == (1, 2) and FAST.max_attempts == 2


def shipping_request(sv: Supervision, **changes: object) -> SupervisionRequested:
    correlation_id = f"order-{uuid.uuid4().hex[:8]}"
    payload = {"commandType": CREATE_LABEL,
               "command": {"orderId": correlation_id, "address": "1 Main St"}}
    return sv.request(correlation_id=correlation_id, payload=payload,
                      reason="carrier failing", **changes)  # type: ignore[arg-type]


def shipping_command(sv: Supervision, request: SupervisionRequested) -> Received:
    """The next command on the shipping queue, checked: the saga's command in an
    envelope of its type, with taskToken and traceparent headers."""
    command = sv.receive(sv.shipping_queue)
    sv.check_envelope(command, CREATE_LABEL, request)
    assert command.message == request.payload["command"]
    assert set(command.envelope["headers"]) == {"taskToken", "traceparent"}
    return command


def test_shipping_recovers_within_the_deadline(make_supervision: MakeSupervision) -> None:
    sv: Supervision = make_supervision("SlowShipping", FAST)
    request = shipping_request(sv)
    arn = sv.start(request)
    started = sv.receive_reply(SUPERVISION_STARTED_URN, request)
    assert started.message["workflow"] == "SlowShipping"

    first = shipping_command(sv, request)
    sv.sfn.send_task_failure(taskToken=first.token, error=SHIPPING_UNAVAILABLE_ERROR,
                             cause="carrier API 503")
    second = shipping_command(sv, request)  # retried after up to 1 s (full jitter)
    assert second.envelope["messageId"] != first.envelope["messageId"]
    sv.sfn.send_task_success(taskToken=second.token,
                             output=json.dumps({"trackingId": "TRK-1", "carrier": "dhl"}))

    completed = sv.receive_reply(SUPERVISION_COMPLETED_URN, request)
    assert completed.message["outcome"] == "shipped"
    assert completed.message["result"]["trackingId"] == "TRK-1"
    sv.acknowledge(completed)
    done = sv.wait_until_done(arn)
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"])["result"] == {"trackingId": "TRK-1", "carrier": "dhl"}
    assert sv.entered(arn)[-7:] == ["CheckShippingRequest", "PrepareShipment",
                                    "RequestShipment", "CheckShipment", "Shipped",
                                    "DeliverOutcome", "Delivered"]
    failures = [e["taskFailedEventDetails"]["error"] for e in sv.events(arn, "TaskFailed")]
    assert failures == [SHIPPING_UNAVAILABLE_ERROR]
    sv.assert_empty(sv.shipping_queue, wait=0)


def test_shipping_never_recovers_and_fails_after_the_retries(
        make_supervision: MakeSupervision) -> None:
    sv: Supervision = make_supervision("SlowShipping", FAST)
    request = shipping_request(sv)
    arn = sv.start(request)
    sv.receive_reply(SUPERVISION_STARTED_URN, request)
    for _ in range(FAST.max_attempts + 1):  # the first attempt and every retry
        command = shipping_command(sv, request)
        sv.sfn.send_task_failure(taskToken=command.token, error=SHIPPING_UNAVAILABLE_ERROR,
                                 cause="carrier down")

    completed = sv.receive_reply(SUPERVISION_COMPLETED_URN, request)
    assert completed.message["outcome"] == "failed"
    assert completed.message["result"]["error"] == SHIPPING_UNAVAILABLE_ERROR
    assert completed.message["result"]["cause"] == "carrier down"
    assert completed.message["result"]["retries"] == FAST.max_attempts
    sv.assert_empty(sv.shipping_queue, wait=0)  # no attempt past the deadline
    sv.acknowledge(completed)
    assert sv.wait_until_done(arn)["status"] == "SUCCEEDED"
    assert sv.entered(arn)[-3:] == ["ShippingFailed", "DeliverOutcome", "Delivered"]
    failures = [e["taskFailedEventDetails"]["error"] for e in sv.events(arn, "TaskFailed")]
    assert failures == [SHIPPING_UNAVAILABLE_ERROR] * (FAST.max_attempts + 1)


def test_a_silent_attempt_times_out_and_is_retried(make_supervision: MakeSupervision) -> None:
    sv: Supervision = make_supervision("SlowShipping", FAST)
    request = shipping_request(sv, traceparent=None)
    arn = sv.start(request)
    sv.receive_reply(SUPERVISION_STARTED_URN, request)
    sv.receive(sv.shipping_queue)  # lost: no answer within attempt_timeout_seconds
    again = sv.receive(sv.shipping_queue)
    sv.check_envelope(again, CREATE_LABEL, request)
    assert set(again.envelope["headers"]) == {"taskToken"}  # no traceparent to pass on
    sv.sfn.send_task_success(taskToken=again.token, output=json.dumps({"trackingId": "T2"}))
    completed = sv.receive_reply(SUPERVISION_COMPLETED_URN, request)
    assert completed.message["outcome"] == "shipped"
    sv.acknowledge(completed)
    assert sv.wait_until_done(arn)["status"] == "SUCCEEDED"
    assert len(sv.events(arn, "TaskTimedOut")) == 1


def test_a_request_without_a_command_fails_at_once(make_supervision: MakeSupervision) -> None:
    sv: Supervision = make_supervision("SlowShipping", FAST)
    # the contract refuses such a request (SupervisionRequested validates a SlowShipping
    # payload); a producer that does not use it can still put one on the bus
    valid = sv.request(payload={"commandType": "urn:message:x:CreateShipment:v1",
                                "command": {}})
    request = SupervisionRequested.model_construct(
        **{**dict(valid), "payload": {"orderId": "o-9"}})
    arn = sv.start(request)
    sv.receive_reply(SUPERVISION_STARTED_URN, request)
    completed = sv.receive_reply(SUPERVISION_COMPLETED_URN, request)
    assert completed.message["outcome"] == "failed"
    assert completed.message["result"]["error"] == "InvalidShippingRequest"
    sv.acknowledge(completed)
    assert sv.wait_until_done(arn)["status"] == "SUCCEEDED"
    sv.assert_empty(sv.shipping_queue, wait=0)


def test_an_answer_without_tracking_id_fails(make_supervision: MakeSupervision) -> None:
    sv: Supervision = make_supervision("SlowShipping", FAST)
    request = shipping_request(sv)
    arn = sv.start(request)
    sv.receive_reply(SUPERVISION_STARTED_URN, request)
    command = shipping_command(sv, request)
    sv.sfn.send_task_success(taskToken=command.token, output=json.dumps({"label": "?"}))
    completed = sv.receive_reply(SUPERVISION_COMPLETED_URN, request)
    assert completed.message["outcome"] == "failed"
    assert completed.message["result"] == {"error": "InvalidShippingAnswer",
                                           "answer": {"label": "?"}}
    sv.acknowledge(completed)
    assert sv.wait_until_done(arn)["status"] == "SUCCEEDED"
