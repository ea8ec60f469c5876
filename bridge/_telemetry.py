"""The bridge's spans and metrics: PutEvents per entry (with the X-Ray trace header that
links the Step Functions execution's trace), task-token answers, the execution itself
rebuilt from its history, and the hand-off counters."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from opentelemetry.trace import SpanKind

from core_saga.metrics import counter
from core_saga.tracing import context_of, end_span, start_span, traceparent_of, tracer

log = logging.getLogger("bridge.telemetry")

XRAY_HEADER = "X-Amzn-Trace-Id"

handoffs_started = counter(
    "stepsaga.handoffs.started", unit="{handoff}",
    description="Hand-offs put on the EventBridge bus (SupervisionRequested accepted).",
    attributes=("stepsaga.workflow",))
handoffs_completed = counter(
    "stepsaga.handoffs.completed", unit="{handoff}",
    description="Hand-offs whose outcome the saga took (the first delivery of "
                "SupervisionCompleted, acknowledged to the workflow).",
    attributes=("stepsaga.workflow", "stepsaga.outcome"))
handoffs_lost = counter(
    "stepsaga.handoffs.lost", unit="{handoff}",
    description="Hand-offs that cannot come back by themselves: the request refused by "
                "EventBridge for good (reason not_delivered), no SupervisionStarted after "
                "every re-publish (not_started), or the execution ended without an "
                "outcome (execution_failed, execution_timed_out, execution_aborted).",
    attributes=("stepsaga.workflow", "stepsaga.reason"))
task_answers = counter(
    "stepsaga.task_answers", unit="{answer}",
    description="Task-token answers (SendTaskSuccess, SendTaskFailure, SendTaskHeartbeat) "
                "Step Functions took.",
    attributes=("rpc.method",))
task_answer_failures = counter(
    "stepsaga.task_answers.failures", unit="{answer}",
    description="Task-token answers not taken: gone (the task no longer waits), retry "
                "(passing) or permanent.",
    attributes=("rpc.method", "stepsaga.delivery"))



def record_handoff_lost(workflow: str, reason: str) -> None:
    """Count a hand-off that will not come back by itself (``stepsaga.handoffs.lost``)."""
    handoffs_lost.add(1, {"stepsaga.workflow": workflow, "stepsaga.reason": reason})


def xray_header(traceparent: str | None) -> str | None:
    """The X-Ray trace header (``Root=1-…;Parent=…;Sampled=…``) of a W3C `traceparent`,
    the same trace id in X-Ray's form; None without one (or without the propagator)."""
    if not traceparent:
        return None
    try:
        from opentelemetry.propagators.aws import AwsXRayPropagator
    except ImportError:  # the otel extra is not installed
        return None
    carrier: dict[str, str] = {}
    AwsXRayPropagator().inject(carrier, context=context_of(traceparent))
    return carrier.get(XRAY_HEADER)


def traceparent_from_xray(header: str | None) -> str | None:
    """The W3C ``traceparent`` of an X-Ray trace header (None when absent or malformed)."""
    if not header:
        return None
    try:
        from opentelemetry.propagators.aws import AwsXRayPropagator
    except ImportError:
        return None
    from opentelemetry import trace

    span = trace.get_current_span(AwsXRayPropagator().extract({XRAY_HEADER: header}))
    return traceparent_of(span)


def xray_trace_id(traceparent: str | None) -> str | None:
    """The X-Ray form of the trace id of `traceparent` (``1-xxxxxxxx-yyyy…``)."""
    header = xray_header(traceparent)
    if not header:
        return None
    root = header.split(";", 1)[0]
    return root.removeprefix("Root=")


def put_events_spans(bus: str, rows: Sequence[Any], entries: list[dict[str, Any]]
                     ) -> list[Any]:
    """Started CLIENT spans, one per entry of a PutEvents call, each the child of the
    context its row was written in (the entry's trace header). Each entry's
    ``TraceHeader`` — and a ``SupervisionRequested``'s ``traceparent`` — become its
    span's, so the workflow, its X-Ray trace and its replies hang below the PutEvents."""
    if tracer() is None:
        return []
    spans: list[Any] = []
    for entry, row in zip(entries, rows, strict=True):
        parent = traceparent_from_xray(entry.get("TraceHeader"))
        if parent is None:
            spans.append(None)
            continue
        detail: dict[str, Any] | None = None
        attributes: dict[str, Any] = {
            "messaging.system": "aws.eventbridge", "messaging.operation.type": "send",
            "messaging.operation.name": "PutEvents", "messaging.destination.name": bus,
            "messaging.batch.message_count": len(rows),
            "messaging.message.id": row.message_id, "rpc.system": "aws-api",
            "rpc.service": "EventBridge", "rpc.method": "PutEvents",
            "stepsaga.detail_type": str(entry.get("DetailType", "")),
            "stepsaga.correlation_id": row.correlation_id or ""}
        if "traceparent" in entry.get("Detail", ""):
            detail = _loads(entry["Detail"])
            if detail is not None and detail.get("workflow"):
                attributes["stepsaga.workflow"] = str(detail["workflow"])
        span = start_span(f"{bus} send", traceparent=parent, kind=SpanKind.CLIENT,
                          attributes=attributes)
        own = traceparent_of(span) if span is not None else None
        if own:
            header = xray_header(own)
            if header:
                entry["TraceHeader"] = header
            if detail is not None and "traceparent" in detail:
                import orjson

                detail["traceparent"] = own
                entry["Detail"] = orjson.dumps(detail).decode()
        spans.append(span)
    return spans


def _loads(text: str) -> dict[str, Any] | None:
    import orjson

    try:
        value = orjson.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def task_answer_span(action: str, traceparent: str | None, handoff: dict[str, Any] | None,
                     correlation_id: str | None) -> Any:
    """A started CLIENT span for a task-token answer, the child of the context that wrote
    it (the ``settle`` of the workflow's task); None while tracing is off."""
    if tracer() is None or not traceparent:
        return None
    attributes: dict[str, Any] = {
        "messaging.system": "aws.stepfunctions", "messaging.operation.type": "settle",
        "messaging.operation.name": action, "rpc.system": "aws-api",
        "rpc.service": "StepFunctions", "rpc.method": action,
        "stepsaga.correlation_id": correlation_id or ""}
    if handoff:
        attributes["stepsaga.workflow"] = str(handoff.get("workflow", ""))
        attributes["stepsaga.handoff_id"] = str(handoff.get("handoffId", ""))
    name = f"{handoff['workflow']} {action}" if handoff and handoff.get("workflow") else action
    return start_span(name, traceparent=traceparent, kind=SpanKind.CLIENT,
                      attributes=attributes)


_END_EVENTS = frozenset({"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut",
                         "ExecutionAborted"})


def _ns(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1e9)
    return int(float(value) * 1e9)


def execution_spans(history: list[dict[str, Any]], *, workflow: str, execution_arn: str,
                    traceparent: str | None, handoff_id: str = "") -> bool:
    """Spans for a Step Functions execution from its history: ``<workflow> execution``
    from ``ExecutionStarted`` to its end (or to the last event, while it still runs: the
    outcome it delivered), with a ``state <name>`` span per state it entered; the child of
    `traceparent` (the hand-off's PutEvents). False when nothing was made."""
    if tracer() is None or not traceparent or not history:
        return False
    events = sorted(history, key=lambda e: int(e.get("id", 0)))
    started = next((e for e in events if e.get("type") == "ExecutionStarted"), None)
    if started is None:
        return False
    ended = next((e for e in events if e.get("type") in _END_EVENTS), None)
    last = ended or events[-1]
    attributes: dict[str, Any] = {
        "cloud.provider": "aws", "cloud.platform": "aws_step_functions",
        "aws.step_functions.execution_arn": execution_arn,
        "stepsaga.workflow": workflow, "stepsaga.handoff_id": handoff_id,
        "stepsaga.execution.status": (ended["type"].removeprefix("Execution").upper()
                                      if ended else "RUNNING")}
    xray = xray_trace_id(traceparent)
    if xray:
        attributes["aws.xray.trace_id"] = xray  # the execution's X-Ray trace
    root = start_span(f"{workflow} execution", traceparent=traceparent, kind=SpanKind.SERVER,
                      start_time=_ns(started["timestamp"]), attributes=attributes)
    if root is None:
        return False
    from opentelemetry import trace

    inside = trace.set_span_in_context(root)
    entered: dict[str, dict[str, Any]] = {}
    for event in events:
        details = event.get("stateEnteredEventDetails")
        if details:
            entered[details.get("name", "?")] = event
            continue
        details = event.get("stateExitedEventDetails")
        if details and details.get("name") in entered:
            name = details["name"]
            begin = entered.pop(name)
            state = start_span(f"state {name}", parent=inside,
                               start_time=_ns(begin["timestamp"]),
                               attributes={"aws.step_functions.state": name,
                                           "aws.step_functions.state_type":
                                               str(begin.get("type", "")).removesuffix(
                                                   "StateEntered")})
            end_span(state, end_time=_ns(event["timestamp"]))
    for name, begin in entered.items():  # still in it when the history was read
        state = start_span(f"state {name}", parent=inside, start_time=_ns(begin["timestamp"]),
                           attributes={"aws.step_functions.state": name})
        end_span(state, end_time=_ns(last["timestamp"]))
    failed = ended is not None and ended["type"] != "ExecutionSucceeded"
    end_span(root, ended["type"] if failed and ended else None,
             end_time=_ns(last["timestamp"]))
    return True
