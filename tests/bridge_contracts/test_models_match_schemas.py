"""The saga's own models and the exported JSON Schemas (docs/contracts, what producers
and consumers validate with) accept and reject the same events: every case below is
run through both. The invalid cases are the ones a producer team got through the old
schemas: a ``schemaVersion`` of 2, a ``replyTo`` that is no URL, an empty ``handoffId``,
a garbage ``traceparent``, a SlowShipping request without its command, an outcome the
saga does not know."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import BaseModel, ValidationError

from bridge.contracts import (
    CONTRACTS,
    ReviewTask,
    SupervisionCompleted,
    SupervisionRequested,
    SupervisionStarted,
    schema_file_name,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "contracts"

REQUEST: dict[str, Any] = {
    "schemaVersion": 1, "handoffId": "5d0c4a56-8f1e-5b8a-9a57-3c3e1f2b7a10",
    "sagaType": "OrderSaga", "correlationId": "o-1", "workflow": "ManualReview",
    "reason": "amount 1500.00 EUR is over the review threshold 1000.00",
    "payload": {"orderId": "o-1", "amount": "1500.00"},
    "replyTo": "https://sqs.eu-west-1.amazonaws.com/123456789012/stepsaga-prod-order-saga",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
SHIPPING = {**REQUEST, "workflow": "SlowShipping", "payload": {
    "commandType": "urn:message:stepsaga.examples:CreateShipment:v1",
    "command": {"orderId": "o-1", "attempt": 4}}}
EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:stepsaga-prod-ManualReview:x1"
STARTED = {**REQUEST, "executionArn": EXECUTION, "startedAt": "2026-11-02T10:00:00.123Z"}
COMPLETED = {**REQUEST, "executionArn": EXECUTION, "outcome": "approved",
             "result": {"decision": "approved", "reviewer": "ann"},
             "taskToken": "AQCEAAAAKgAAAAMAAAAAAAAAAeXAMPLE+/="}
REVIEW = {"handoffId": REQUEST["handoffId"], "correlationId": "o-1", "sagaType": "OrderSaga",
          "reason": "big", "payload": {}, "escalated": False, "executionArn": EXECUTION,
          "taskToken": "t-1"}


def changed(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not DROP}


DROP = object()

CASES: list[tuple[type[BaseModel], str, dict[str, Any], bool]] = [
    (SupervisionRequested, "manual review", REQUEST, True),
    (SupervisionRequested, "slow shipping with its command", SHIPPING, True),
    (SupervisionRequested, "no traceparent", changed(REQUEST, traceparent=DROP), True),
    (SupervisionRequested, "null traceparent", changed(REQUEST, traceparent=None), True),
    (SupervisionRequested, "no schemaVersion (v1 by default)",
     changed(REQUEST, schemaVersion=DROP), True),
    (SupervisionRequested, "an unknown field (newer producer)",
     changed(REQUEST, priority="high"), True),
    (SupervisionRequested, "the emulator's queue URL",
     changed(REQUEST, replyTo="http://127.0.0.1:5000/123456789012/stepsaga-local-order-saga"),
     True),
    (SupervisionRequested, "schemaVersion 2", changed(REQUEST, schemaVersion=2), False),
    (SupervisionRequested, "replyTo is a queue name", changed(REQUEST, replyTo="order-saga"),
     False),
    (SupervisionRequested, "replyTo has no path",
     changed(REQUEST, replyTo="https://sqs.eu-west-1.amazonaws.com"), False),
    (SupervisionRequested, "empty handoffId", changed(REQUEST, handoffId=""), False),
    (SupervisionRequested, "empty sagaType", changed(REQUEST, sagaType=""), False),
    (SupervisionRequested, "empty correlationId", changed(REQUEST, correlationId=""), False),
    (SupervisionRequested, "empty reason", changed(REQUEST, reason=""), False),
    (SupervisionRequested, "garbage traceparent", changed(REQUEST, traceparent="hello"),
     False),
    (SupervisionRequested, "upper-case traceparent",
     changed(REQUEST, traceparent=str(REQUEST["traceparent"]).upper()), False),
    (SupervisionRequested, "unknown workflow", changed(REQUEST, workflow="Audit"), False),
    (SupervisionRequested, "SlowShipping without commandType",
     changed(SHIPPING, payload={"command": {"orderId": "o-1"}}), False),
    (SupervisionRequested, "SlowShipping without command",
     changed(SHIPPING, payload={"commandType": "urn:message:x:CreateShipment:v1"}), False),
    (SupervisionRequested, "SlowShipping with an empty payload", changed(SHIPPING, payload={}),
     False),
    (SupervisionRequested, "SlowShipping with a commandType that is no URN",
     changed(SHIPPING, payload={"commandType": "CreateShipment", "command": {}}), False),
    (SupervisionRequested, "SlowShipping with a command that is no object",
     changed(SHIPPING, payload={"commandType": "urn:message:x:CreateShipment:v1",
                                "command": "ship it"}), False),
    (SupervisionRequested, "no replyTo", changed(REQUEST, replyTo=DROP), False),
    (SupervisionStarted, "started", STARTED, True),
    (SupervisionStarted, "started without an execution ARN",
     changed(STARTED, executionArn=""), False),
    (SupervisionStarted, "started with a state machine ARN",
     changed(STARTED, executionArn=EXECUTION.replace(":execution:", ":stateMachine:")), False),
    (SupervisionStarted, "started schemaVersion 2", changed(STARTED, schemaVersion=2), False),
    (SupervisionCompleted, "completed", COMPLETED, True),
    (SupervisionCompleted, "completed shipping", {
        **SHIPPING, "executionArn": EXECUTION, "outcome": "shipped",
        "result": {"trackingId": "T-1"}, "taskToken": "t"}, True),
    (SupervisionCompleted, "outcome escalated", changed(COMPLETED, outcome="escalated"), False),
    (SupervisionCompleted, "empty task token", changed(COMPLETED, taskToken=""), False),
    (SupervisionCompleted, "task token over 1024", changed(COMPLETED, taskToken="t" * 1025),
     False),
    (SupervisionCompleted, "completed with a bad replyTo", changed(COMPLETED, replyTo="q"),
     False),
    (ReviewTask, "review task", REVIEW, True),
    (ReviewTask, "escalated review task", changed(REVIEW, escalated=True), True),
    (ReviewTask, "review task with an empty handoffId", changed(REVIEW, handoffId=""), False),
    (ReviewTask, "review task without a token", changed(REVIEW, taskToken=DROP), False),
]


def _validator(contract: type[BaseModel]) -> Draft202012Validator:
    schema = json.loads((DOCS / schema_file_name(contract)).read_text())  # type: ignore[arg-type]
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def test_every_contract_has_cases() -> None:
    assert {c for c, _, _, valid in CASES if valid} == set(CONTRACTS)
    assert {c for c, _, _, valid in CASES if not valid} == set(CONTRACTS)


@pytest.mark.parametrize(("contract", "name", "instance", "valid"), CASES,
                         ids=[f"{c.__name__}: {n}" for c, n, _, _ in CASES])
def test_the_model_and_the_exported_schema_agree(contract: type[BaseModel], name: str,
                                                 instance: dict[str, Any],
                                                 valid: bool) -> None:
    schema_errors = [e.message for e in _validator(contract).iter_errors(instance)]
    try:
        contract.model_validate(instance)
        model_ok = True
    except ValidationError:
        model_ok = False
    assert model_ok is valid, f"model: {name}"
    assert (not schema_errors) is valid, f"schema: {name}: {schema_errors}"


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.__name__)
def test_what_the_models_write_the_schemas_accept(contract: type[BaseModel]) -> None:
    """The models' own output (camelCase JSON) validates against the exported schema."""
    [instance] = [i for c, _, i, valid in CASES if c is contract and valid][:1]
    written = json.loads(contract.model_validate(instance).model_dump_json(by_alias=True))
    assert not list(_validator(contract).iter_errors(written))
