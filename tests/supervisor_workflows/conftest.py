"""A harness for running the supervisor workflows on the emulator: it creates the claim
table, the queues and the state machine (rendered definition, fast timings), starts
executions with StartExecution, and plays the saga, the reviewer and the shipping service
with boto3."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from bridge.contracts import (
    REVIEW_TASK_URN,
    SUPERVISION_COMPLETED_URN,
    SUPERVISION_STARTED_URN,
    SupervisionRequested,
    handoff_id,
)
from core_saga.emulator import Emulator
from core_saga.extension import decode_envelope
from supervisor_workflows import WORKFLOWS, render_definition

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = {urn: json.loads((ROOT / "docs" / "contracts" / f"{name}.v1.schema.json").read_text())
           for urn, name in ((SUPERVISION_STARTED_URN, "SupervisionStarted"),
                             (SUPERVISION_COMPLETED_URN, "SupervisionCompleted"),
                             (REVIEW_TASK_URN, "ReviewTask"))}
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
ROLE = "arn:aws:iam::123456789012:role/supervisor"
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@dataclass
class Received:
    """One SQS message: its envelope (as JSON) and its message attributes."""

    envelope: dict[str, Any]
    attributes: dict[str, str]

    @property
    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = self.envelope["message"]
        return message

    @property
    def token(self) -> str:
        token: str = self.envelope["headers"]["taskToken"]
        return token


@dataclass
class Supervision:
    """One workflow on the emulator with its own table and queues."""

    aws: Emulator
    workflow: str
    timings: Any
    prefix: str = field(default_factory=lambda: f"sv{uuid.uuid4().hex[:10]}")
    message_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sqs = self.aws.boto3_client("sqs")
        self.sfn = self.aws.boto3_client("stepfunctions")
        self.dynamodb = self.aws.boto3_client("dynamodb")
        self.table = f"{self.prefix}-claims"
        self.dynamodb.create_table(
            TableName=self.table, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "handoffId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "handoffId", "AttributeType": "S"}])
        self.review_queue = self.aws.create_queue(f"{self.prefix}-review", dlq=False).url
        self.shipping_queue = self.aws.create_queue(f"{self.prefix}-shipping", dlq=False).url
        self.reply_queue = self.aws.create_queue(f"{self.prefix}-saga", dlq=False).url
        definition = render_definition(WORKFLOWS[self.workflow](self.timings), {
            "ClaimTableName": self.table, "ReviewQueueUrl": self.review_queue,
            "ShippingQueueUrl": self.shipping_queue})
        self.state_machine_arn: str = self.sfn.create_state_machine(
            name=f"{self.prefix}-{self.workflow}", definition=definition, roleArn=ROLE,
            type="STANDARD")["stateMachineArn"]

    # --- the saga hands off ------------------------------------------------------------

    def request(self, *, correlation_id: str | None = None, traceparent: str | None =
                TRACEPARENT, payload: dict[str, Any] | None = None,
                reason: str = "order over the limit") -> SupervisionRequested:
        correlation_id = correlation_id or f"order-{uuid.uuid4().hex[:8]}"
        return SupervisionRequested(
            handoff_id=handoff_id("OrderToCash", correlation_id, self.workflow),
            saga_type="OrderToCash", correlation_id=correlation_id,
            workflow=self.workflow, reason=reason,
            payload=payload if payload is not None else {"orderId": correlation_id},
            reply_to=self.reply_queue, traceparent=traceparent)

    def start(self, request: SupervisionRequested, *, name: str | None = None) -> str:
        """StartExecution with the detail as input (as the rule's InputPath $.detail does),
        named `name` (a fresh one by default; ``""``: no name, as EventBridge starts it)."""
        detail = request.check_size().decode()
        kwargs = {"stateMachineArn": self.state_machine_arn, "input": detail}
        if name != "":
            kwargs["name"] = name or f"x-{uuid.uuid4().hex[:12]}"
        arn: str = self.sfn.start_execution(**kwargs)["executionArn"]
        return arn

    # --- queues ------------------------------------------------------------------------

    def receive(self, queue_url: str, *, timeout: float = 15.0) -> Received:
        """The next message on `queue_url` (deleted), or AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            wait = max(1, min(5, int(deadline - time.monotonic())))
            got = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1,
                                           WaitTimeSeconds=wait,
                                           MessageAttributeNames=["All"])
            for message in got.get("Messages", []):
                self.sqs.delete_message(QueueUrl=queue_url,
                                        ReceiptHandle=message["ReceiptHandle"])
                envelope = json.loads(message["Body"])
                self.message_ids.append(envelope["messageId"])
                attributes = {k: v["StringValue"]
                              for k, v in (message.get("MessageAttributes") or {}).items()}
                return Received(envelope, attributes)
        raise AssertionError(f"no message on {queue_url.rsplit('/', 1)[-1]} in {timeout} s")

    def assert_empty(self, queue_url: str, *, wait: int = 1) -> None:
        got = self.sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=wait,
                                       MessageAttributeNames=["All"])
        assert not got.get("Messages"), f"unexpected: {got['Messages'][0]['Body'][:300]}"

    def receive_reply(self, urn: str, request: SupervisionRequested,
                      **kwargs: Any) -> Received:
        """The next message on the saga's queue, checked as an envelope of `urn`."""
        received = self.receive(self.reply_queue, **kwargs)
        self.check_envelope(received, urn, request)
        return received

    def check_envelope(self, received: Received, urn: str,
                       request: SupervisionRequested) -> None:
        """The envelope follows docs/contracts-notes.md and its message the contract."""
        envelope = received.envelope
        assert set(envelope) >= {"messageId", "messageType", "correlationId", "conversationId",
                                 "causationId", "sentTime", "headers", "message"}
        assert str(uuid.UUID(envelope["messageId"])) == envelope["messageId"]
        assert envelope["messageType"] == urn
        assert envelope["correlationId"] == request.correlation_id
        assert envelope["conversationId"] == request.handoff_id
        assert received.attributes.get("MessageType") == urn
        if request.traceparent:
            assert envelope["headers"]["traceparent"] == request.traceparent
            assert received.attributes["traceparent"] == request.traceparent
        else:
            assert "traceparent" not in envelope["headers"]
            assert "traceparent" not in received.attributes
        if urn in SCHEMAS:
            jsonschema.validate(envelope["message"], SCHEMAS[urn])
            decoded = decode_envelope(json.dumps(envelope))  # as a saga reads it
            assert decoded.message.message_urn == urn
            assert decoded.correlation_id == request.correlation_id
        if "taskToken" in envelope["message"]:
            assert envelope["headers"]["taskToken"] == envelope["message"]["taskToken"]

    # --- executions --------------------------------------------------------------------

    def wait_until_done(self, execution_arn: str, *, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            described: dict[str, Any] = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] in TERMINAL:
                return described
            assert time.monotonic() < deadline, f"still {described['status']} after {timeout} s"
            time.sleep(0.1)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        while True:
            page = self.sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    def entered(self, execution_arn: str) -> list[str]:
        """The states entered, in order."""
        return [e["stateEnteredEventDetails"]["name"] for e in self.history(execution_arn)
                if "stateEnteredEventDetails" in e]

    def events(self, execution_arn: str, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.history(execution_arn) if e["type"] == event_type]

    def acknowledge(self, completed: Received) -> None:
        """The saga's outbox, after its commit: SendTaskSuccess with the delivered token."""
        self.sfn.send_task_success(taskToken=completed.token,
                                   output=json.dumps({"acknowledged": True}))

    def assert_fresh_message_ids(self) -> None:
        assert len(self.message_ids) == len(set(self.message_ids)), self.message_ids


@pytest.fixture(scope="session")
def supervision_emulator(emulator: Emulator) -> Emulator:
    """The session's emulator: its built-in extensions cover every gap the workflows
    meet (fresh task token per Retry attempt, ``States.Format`` escapes; see
    tests/emulator/test_ext_*)."""
    return emulator


MakeSupervision = Callable[[str, Any], "Supervision"]


@pytest.fixture
def make_supervision(supervision_emulator: Emulator) -> Iterator[MakeSupervision]:
    """``make_supervision("ManualReview", timings)`` → a :class:`Supervision`."""
    made: list[Supervision] = []

    def make(workflow: str, timings: Any) -> Supervision:
        supervision = Supervision(supervision_emulator, workflow, timings)
        made.append(supervision)
        return supervision

    yield make
    for supervision in made:
        supervision.assert_fresh_message_ids()
