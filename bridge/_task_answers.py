"""Task-token callbacks through the outbox: ``SendTaskSuccess`` / ``SendTaskFailure``
written in the consumer's transaction and called after the commit.

A workflow waiting in a ``.waitForTaskToken`` task hands its token to a service (the
shipping service, the saga). The service answers with :func:`send_task_success` or
:func:`send_task_failure` inside its message handling; the answer is an outbox row of
kind ``sfn-task``, so it leaves only if the work it reports was committed, and it is
retried until Step Functions has it. :class:`StepFunctionsSink` makes the calls
(``worker.add_sink(TASK_ANSWER, sink)``).

An answer whose task is gone (``TaskTimedOut`` on AWS; ``InvalidToken`` or
``TaskDoesNotExist``, also what the local emulator says) is done: the workflow has moved
on (timed out, or a retry holds a new token) and nothing can change that. It is logged,
not retried, and the row keeps the note (the order's timeline shows it). Tokens never
appear in logs or error reasons.

Long work inside a handler keeps its task alive with :class:`TaskHeartbeats`
(``SendTaskHeartbeat`` every few seconds while the work runs).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

import orjson
from botocore.exceptions import ClientError

from core_saga import ConsumeContext
from core_saga.extension import DeliveryResult, DeliveryStatus
from core_saga.metrics import aws_calls
from core_saga.persistence import OutboxRow
from core_saga.tracing import current_traceparent, end_span, tracer

from ._telemetry import (
    execution_spans,
    handoffs_completed,
    task_answer_failures,
    task_answer_span,
    task_answers,
)

log = logging.getLogger("bridge.task_answers")

TASK_ANSWER = "sfn-task"
"""The outbox kind of task-token answers."""

STEP_FUNCTIONS = "stepfunctions"
"""The destination of task-token answers."""

SUCCESS = "SendTaskSuccess"
FAILURE = "SendTaskFailure"
HEARTBEAT = "SendTaskHeartbeat"

TASK_GONE_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
"""The task no longer waits: the answer is done, with nothing to change."""

PERMANENT_ERRORS = frozenset({"InvalidOutput", "ValidationException", "AccessDeniedException",
                              "UnrecognizedClientException"})
"""Errors a retry cannot fix."""

HISTORY_PAGES = 5
"""At most this many pages of 1,000 events are read for an execution's span."""

MAX_ERROR_NAME = 256
MAX_CAUSE = 32768


def send_task_success(ctx: ConsumeContext[Any], task_token: str, output: Any) -> None:
    """Answer `task_token` with success and `output` (JSON-serialisable) after the
    current transaction commits."""
    _answer(ctx, {"action": SUCCESS, "taskToken": task_token,
                  "output": orjson.dumps(output).decode()})


def send_task_failure(ctx: ConsumeContext[Any], task_token: str, error: str,
                      cause: str = "") -> None:
    """Answer `task_token` with a failure named `error` (what the workflow's Retry and
    Catch match) after the current transaction commits."""
    if not error:
        raise ValueError("a task failure needs an error name")
    _answer(ctx, {"action": FAILURE, "taskToken": task_token, "error": error[:MAX_ERROR_NAME],
                  "cause": cause[:MAX_CAUSE]})


def send_task_heartbeat(ctx: ConsumeContext[Any], task_token: str) -> None:
    """Tell the workflow, after the current transaction commits, that the task is still
    being worked on (its ``HeartbeatSeconds`` clock starts again). For work that goes on
    while the handler runs, use :class:`TaskHeartbeats` instead."""
    _answer(ctx, {"action": HEARTBEAT, "taskToken": task_token})


def acknowledge_handoff(ctx: ConsumeContext[Any], task_token: str, output: Any, *,
                        handoff: dict[str, Any]) -> None:
    """``SendTaskSuccess`` for a hand-off's outcome, after the commit, noting the hand-off
    (``workflow``, ``handoffId``, ``outcome``, ``executionArn``, ``first``) for the
    sink's metrics and for the execution's span (made from its history)."""
    _answer(ctx, {"action": SUCCESS, "taskToken": task_token,
                  "output": orjson.dumps(output).decode()}, handoff=handoff)


def _answer(ctx: ConsumeContext[Any], body: dict[str, Any], *,
            handoff: dict[str, Any] | None = None) -> None:
    if not body["taskToken"]:
        raise ValueError("the task token is empty")
    trace = current_traceparent()
    if trace:  # the answer's span joins the trace of the work it reports
        body["traceparent"] = trace
    if handoff is not None:
        body["handoff"] = handoff
    ctx.add_raw(TASK_ANSWER, STEP_FUNCTIONS, orjson.dumps(body),
                message_type=f"stepfunctions:{body['action']}",
                correlation_id=ctx.envelope.correlation_id)


class StepFunctionsClient(Protocol):
    """What the sink needs of a Step Functions client (aiobotocore's ``stepfunctions``)."""

    async def send_task_success(self, **kwargs: Any) -> dict[str, Any]: ...

    async def send_task_failure(self, **kwargs: Any) -> dict[str, Any]: ...

    async def send_task_heartbeat(self, **kwargs: Any) -> dict[str, Any]: ...

    async def get_execution_history(self, **kwargs: Any) -> dict[str, Any]: ...


class StepFunctionsSink:
    """Calls ``SendTaskSuccess`` / ``SendTaskFailure`` for outbox rows of kind
    ``sfn-task``, up to ten at a time. Throttling and service errors are retried by the
    outbox dispatcher; a gone task counts as delivered (see the module docs)."""

    batch_size = 10

    def __init__(self, client: StepFunctionsClient) -> None:
        self.client = client
        self.calls = 0
        """API calls made (the cost model counts them)."""
        self.answered = 0
        """Answers Step Functions took."""
        self.gone = 0
        """Answers whose task was no longer waiting."""

    @staticmethod
    def redact_body(body: bytes) -> str:
        """A row's body for the error store, with the task token masked."""
        try:
            data = orjson.loads(body)
        except ValueError:
            return "<not a task answer>"
        if isinstance(data, dict) and "taskToken" in data:
            data["taskToken"] = "***"
        return orjson.dumps(data).decode()

    async def deliver(self, destination: str, rows: Sequence[OutboxRow]
                      ) -> dict[int, DeliveryResult]:
        results = await asyncio.gather(*(self._answer(row) for row in rows))
        return {row.id: result for row, result in zip(rows, results, strict=True)
                if result is not None}

    async def _answer(self, row: OutboxRow) -> DeliveryResult | None:
        try:
            body = orjson.loads(row.body)
            action, token = body["action"], body["taskToken"]
        except (ValueError, KeyError, TypeError) as exc:
            return DeliveryResult.permanent(f"not a task answer: {type(exc).__name__}")
        handoff = body.get("handoff") if isinstance(body.get("handoff"), dict) else None
        span = task_answer_span(str(action), body.get("traceparent"), handoff,
                                row.correlation_id)
        result = await self._call(row, body, action, token)
        # a settled answer is one whose task was gone
        delivery = None if result is None else (
            "gone" if result.status is DeliveryStatus.SETTLED else result.status.value)
        if span is not None and delivery is not None:
            span.set_attribute("stepsaga.delivery", delivery)
        end_span(span, None if result is None or result.status is DeliveryStatus.SETTLED
                 else result.reason)
        if result is None:
            task_answers.add(1, {"rpc.method": str(action)})
            if handoff is not None and handoff.get("first"):
                handoffs_completed.add(1, {"stepsaga.workflow": str(handoff.get("workflow")),
                                           "stepsaga.outcome": str(handoff.get("outcome"))})
                await self._trace_execution(handoff)
        else:
            task_answer_failures.add(1, {"rpc.method": str(action),
                                         "stepsaga.delivery": str(delivery)})
        return result

    async def _trace_execution(self, handoff: dict[str, Any]) -> None:
        """The execution's span, from its history (only while tracing is on; one
        ``GetExecutionHistory`` call per hand-off, never failing the answer)."""
        arn, parent = handoff.get("executionArn"), handoff.get("traceparent")
        if tracer() is None or not arn or not parent:
            return
        try:
            events: list[dict[str, Any]] = []
            token: str | None = None
            for _page in range(HISTORY_PAGES):
                kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
                if token:
                    kwargs["nextToken"] = token
                aws_calls.add(1, {"rpc.service": "stepfunctions",
                                  "rpc.method": "GetExecutionHistory"})
                page = await self.client.get_execution_history(**kwargs)
                events.extend(page.get("events") or [])
                token = page.get("nextToken")
                if not token:
                    break
            execution_spans(events, workflow=str(handoff.get("workflow", "")),
                            execution_arn=str(arn), traceparent=str(parent),
                            handoff_id=str(handoff.get("handoffId", "")))
        except Exception as exc:  # a span is never worth a failed answer
            log.info("no span for execution %s: %s: %s", arn, type(exc).__name__, exc)

    async def _call(self, row: OutboxRow, body: dict[str, Any], action: str, token: str
                    ) -> DeliveryResult | None:
        self.calls += 1
        aws_calls.add(1, {"rpc.service": "stepfunctions", "rpc.method": action})
        try:
            if action == SUCCESS:
                await self.client.send_task_success(taskToken=token, output=body["output"])
            elif action == FAILURE:
                await self.client.send_task_failure(taskToken=token, error=body["error"],
                                                    cause=body.get("cause", ""))
            elif action == HEARTBEAT:
                await self.client.send_task_heartbeat(taskToken=token)
            else:
                return DeliveryResult.permanent(f"unknown task answer {action!r}")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            message = str(exc.response.get("Error", {}).get("Message", "")).replace(token, "***")
            if code in TASK_GONE_ERRORS:
                self.gone += 1
                log.info("%s for %s (row %s): the task is gone (%s)", action,
                         row.correlation_id, row.id, code)
                # finished, not retried; the note stays on the row (the order's timeline)
                return DeliveryResult.settled(f"{action}: the task is gone ({code})")
            reason = f"{action} failed: {code}: {message}"
            return (DeliveryResult.permanent(reason) if code in PERMANENT_ERRORS
                    else DeliveryResult.retry(reason))
        self.answered += 1
        return None


class TaskHeartbeats:
    """Sends ``SendTaskHeartbeat`` for a task while long work runs::

        async with heartbeats.keep_alive(ctx.task_token):
            label = await carrier.create_label(...)   # may take minutes

    The heartbeat goes straight to Step Functions (not through the outbox: it must
    arrive while the work runs, before anything commits). A task that is gone stops
    the heartbeats; other errors are logged and the next beat tries again.
    """

    def __init__(self, client: StepFunctionsClient, *, every_seconds: float = 30.0) -> None:
        if every_seconds <= 0:
            raise ValueError(f"every_seconds must be positive, not {every_seconds}")
        self.client = client
        self.every_seconds = every_seconds
        self.sent = 0

    def keep_alive(self, task_token: str | None) -> _KeepAlive:
        """A context manager beating for `task_token` (nothing when it is None)."""
        return _KeepAlive(self, task_token)

    async def _beat_until_cancelled(self, token: str) -> None:
        while True:
            await asyncio.sleep(self.every_seconds)
            aws_calls.add(1, {"rpc.service": "stepfunctions", "rpc.method": HEARTBEAT})
            try:
                await self.client.send_task_heartbeat(taskToken=token)
                self.sent += 1
                task_answers.add(1, {"rpc.method": HEARTBEAT})
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "ClientError")
                task_answer_failures.add(1, {"rpc.method": HEARTBEAT, "stepsaga.delivery":
                                             "gone" if code in TASK_GONE_ERRORS else "retry"})
                if code in TASK_GONE_ERRORS:
                    log.info("heartbeat: the task is gone (%s); stopping", code)
                    return
                log.warning("heartbeat failed (%s); trying again in %.0f s", code,
                            self.every_seconds)


class _KeepAlive:
    def __init__(self, heartbeats: TaskHeartbeats, token: str | None) -> None:
        self.heartbeats = heartbeats
        self.token = token
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        if self.token:
            self._task = asyncio.create_task(self.heartbeats._beat_until_cancelled(self.token))

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
