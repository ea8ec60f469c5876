"""Testing supervised sagas in process: a double of the supervisor workflows for
:class:`core_saga.testing.SagaTestHarness`.

The double records what the saga puts on EventBridge and the task answers it sends,
and plays a workflow's side: it reports ``SupervisionStarted`` and delivers
``SupervisionCompleted`` (with a task token) on the saga's reply queue, as Step
Functions does: the queue the ``replyTo`` URL names by its last segment (a saga in a
harness sets ``HandOffConfig(reply_to=harness_queue_url("order-saga"))``). End-to-end
tests on the emulator run the real workflows instead.

    async with SagaTestHarness() as h:
        supervisor = SupervisorDouble(h)
        h.add_saga(OrderSaga(settings), queue="order-saga")
        ...
        (request,) = supervisor.requests("ManualReview")
        await supervisor.start(request)
        token = await supervisor.complete(request, "approved", {"reviewer": "ann"})
        assert supervisor.acknowledged(token)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import orjson

from core_saga import Envelope
from core_saga.extension import DeliveryResult, new_id
from core_saga.persistence import OutboxRow
from core_saga.testing import SagaTestHarness

from ._publisher import EVENTBRIDGE
from ._task_answers import FAILURE, SUCCESS, TASK_ANSWER
from .contracts import (
    EXECUTION_STATUS_DETAIL_TYPE,
    STEP_FUNCTIONS_SOURCE,
    SUPERVISION_EXECUTION_CHANGED_URN,
    TASK_TOKEN_HEADER,
    TRACEPARENT_HEADER,
    Outcome,
    SupervisionCompleted,
    SupervisionRequested,
    SupervisionStarted,
)


class RecordingSink:
    """An outbox sink that keeps every row it is given and reports success."""

    batch_size = 10

    def __init__(self) -> None:
        self.rows: list[OutboxRow] = []

    async def deliver(self, destination: str, rows: Sequence[OutboxRow]
                      ) -> dict[int, DeliveryResult]:
        self.rows.extend(rows)
        return {}

    def bodies(self) -> list[dict[str, Any]]:
        """Every row's body, decoded."""
        return [orjson.loads(row.body) for row in self.rows]


def harness_queue_url(queue: str, *, region: str = "us-east-1",
                      account: str = "123456789012") -> str:
    """An SQS-shaped URL for `queue` of a test harness (whose queues have names, not
    URLs): what a saga's ``HandOffConfig.reply_to`` holds there."""
    return f"https://sqs.{region}.amazonaws.com/{account}/{queue}"


def reply_queue(reply_to: str) -> str:
    """The harness queue a ``replyTo`` URL names: its last path segment."""
    return reply_to.rstrip("/").rsplit("/", 1)[-1]


class SupervisorDouble:
    """Stands in for EventBridge and the supervisor workflows in a test harness."""

    def __init__(self, harness: SagaTestHarness, *, region: str = "us-east-1",
                 account: str = "123456789012") -> None:
        self.harness = harness
        self.events = RecordingSink()
        self.tasks = RecordingSink()
        self.region = region
        self.account = account
        self._tokens = itertools.count(1)
        harness.add_sink(EVENTBRIDGE, self.events)
        harness.add_sink(TASK_ANSWER, self.tasks)

    def requests(self, workflow: str | None = None) -> list[SupervisionRequested]:
        """``SupervisionRequested`` details put on the bus, oldest first."""
        found = []
        for entry in self.events.bodies():
            if entry.get("DetailType") != SupervisionRequested.detail_type:
                continue
            request = SupervisionRequested.model_validate_json(entry["Detail"])
            if workflow is None or request.workflow == workflow:
                found.append(request)
        return found

    def execution_arn(self, request: SupervisionRequested) -> str:
        """The (made-up) execution ARN of the workflow run for `request`."""
        return (f"arn:aws:states:{self.region}:{self.account}:execution:"
                f"{request.workflow}:{request.handoff_id}")

    def _envelope(self, request: SupervisionRequested, message: SupervisionStarted |
                  SupervisionCompleted, headers: dict[str, str]) -> Envelope:
        if request.traceparent:
            headers = {TRACEPARENT_HEADER: request.traceparent, **headers}
        return Envelope(message=message, message_id=new_id(),
                        correlation_id=request.correlation_id,
                        conversation_id=request.handoff_id,
                        sent_time=self.harness.clock.now(), headers=headers)

    async def start(self, request: SupervisionRequested) -> SupervisionStarted:
        """Report ``SupervisionStarted`` on the request's reply queue."""
        started = SupervisionStarted(
            **request.model_dump(exclude={"schema_version"}),
            execution_arn=self.execution_arn(request), started_at=self.harness.clock.now())
        await self.harness.send_envelope(reply_queue(request.reply_to),
                                         self._envelope(request, started, {}))
        return started

    async def complete(self, request: SupervisionRequested, outcome: Outcome,
                       result: dict[str, Any] | None = None, *,
                       task_token: str | None = None) -> str:
        """Deliver ``SupervisionCompleted`` with a fresh task token (or `task_token`, to
        repeat a delivery); the token."""
        token = task_token or f"token-{request.handoff_id}-{next(self._tokens)}"
        completed = SupervisionCompleted(
            **request.model_dump(exclude={"schema_version"}), outcome=outcome,
            result=result or {}, execution_arn=self.execution_arn(request),
            task_token=token)
        await self.harness.send_envelope(
            reply_queue(request.reply_to),
            self._envelope(request, completed, {TASK_TOKEN_HEADER: token}))
        return token

    async def end_execution(self, request: SupervisionRequested, status: str, *,
                            error: str | None = None, cause: str | None = None,
                            execution_arn: str | None = None,
                            event_id: str | None = None) -> str:
        """Deliver Step Functions' "Execution Status Change" event for the execution of
        `request` (or `execution_arn`) ending with `status` (FAILED, TIMED_OUT,
        ABORTED…), as the status rule puts it on the saga's queue: an envelope whose
        message is the whole event. Returns the event id (pass it again as `event_id`
        to repeat a delivery)."""
        event_id = event_id or new_id()
        now = self.harness.clock.now()
        arn = execution_arn or self.execution_arn(request)
        machine = arn.split(":execution:", 1)[0] + ":stateMachine:" + request.workflow
        event = {
            "version": "0", "id": event_id, "detail-type": EXECUTION_STATUS_DETAIL_TYPE,
            "source": STEP_FUNCTIONS_SOURCE, "account": self.account, "region": self.region,
            "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "resources": [arn],
            "detail": {"executionArn": arn, "stateMachineArn": machine,
                       "name": arn.rsplit(":", 1)[-1], "status": status,
                       "startDate": int(now.timestamp() * 1000),
                       "stopDate": int(now.timestamp() * 1000),
                       "input": request.detail_json().decode(), "output": None,
                       "error": error, "cause": cause}}
        body = orjson.dumps({
            "messageId": event_id, "messageType": SUPERVISION_EXECUTION_CHANGED_URN,
            "correlationId": None, "conversationId": None, "causationId": None,
            "sentTime": event["time"], "headers": {}, "message": event})
        await self.harness.send_raw(reply_queue(request.reply_to), body)
        return event_id

    def answers(self) -> list[dict[str, Any]]:
        """Every task answer sent (``action``, ``taskToken``, ``output`` or ``error``)."""
        return self.tasks.bodies()

    def acknowledged(self, token: str) -> int:
        """How many times `token` was answered with ``SendTaskSuccess``."""
        return sum(1 for a in self.answers() if a["taskToken"] == token and a["action"] == SUCCESS)

    def failed(self, token: str) -> list[dict[str, Any]]:
        """The ``SendTaskFailure`` answers of `token`."""
        return [a for a in self.answers() if a["taskToken"] == token and a["action"] == FAILURE]

