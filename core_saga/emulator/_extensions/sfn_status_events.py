"""Step Functions puts its execution status events on the default event bus.

The gap (moto 5.2.5): AWS sends a "Step Functions Execution Status Change" event
(source ``aws.states``) to the account's default bus whenever a Standard execution
starts (RUNNING) or ends (SUCCEEDED, FAILED, TIMED_OUT, ABORTED); rules on them are how
a system learns that an execution it started failed or was stopped. moto sends none.

The fix: the executing backend reports the start and the end of every execution as
AWS does — ``detail`` with ``executionArn``, ``stateMachineArn``, ``name``, ``status``,
``startDate`` and ``stopDate`` (epoch milliseconds), ``input`` and ``output`` (JSON
text), ``error`` and ``cause``; ``resources`` the execution ARN — through moto's own
PutEvents path, so rules on the default bus (and their targets, archives) get them.
"""

from __future__ import annotations

import datetime
import functools
import importlib
import json
import logging
from collections.abc import Callable
from typing import Any, Final

LOG = logging.getLogger("stepsaga.emulator")

SOURCE: Final = "aws.states"
DETAIL_TYPE: Final = "Step Functions Execution Status Change"


def _millis(value: Any) -> int | None:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return int(value.timestamp() * 1000)
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def status_detail(execution: Any, *, starting: bool = False) -> dict[str, Any]:
    """The event's ``detail`` for `execution` (a parser-backend Execution) now; with
    `starting`, its RUNNING event (a short execution may have ended on its worker thread
    before the start returns: its start is still reported as a start)."""
    if starting:
        status = "RUNNING"
    else:
        status = execution.exec_status.value if execution.exec_status is not None else "RUNNING"
    return {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": status,
        "startDate": _millis(execution.start_date),
        "stopDate": None if starting else _millis(execution.stop_date),
        "input": _text(execution.execution_input),
        "output": _text(execution.output) if status == "SUCCEEDED" else None,
        "inputDetails": {"included": True},
        "outputDetails": {"included": True} if status == "SUCCEEDED" else None,
        "error": None if starting else (execution.error or None),
        "cause": None if starting else (execution.cause or None),
    }


def emit(execution: Any, *, starting: bool = False) -> None:
    """Put the status event of `execution` on its account's default bus (a failure is
    logged: the execution itself is not affected, as on AWS). Standard executions only,
    as on AWS."""
    if str(getattr(execution.sm_type, "value", execution.sm_type)) != "STANDARD":
        return
    try:
        events = importlib.import_module("moto.events.models")
        backend = events.events_backends[execution.account_id][execution.region_name]
        backend.put_events([{"Source": SOURCE, "DetailType": DETAIL_TYPE,
                             "Detail": json.dumps(status_detail(execution, starting=starting)),
                             "Resources": [execution.exec_arn]}])
    except Exception:
        LOG.exception("could not put the status event of %s",
                      getattr(execution, "exec_arn", execution))


def apply() -> None:
    """Wrap ``Execution.start`` (RUNNING) and the worker's ``terminated`` (the end)."""
    module = importlib.import_module("moto.stepfunctions.parser.backend.execution")
    execution_class = module.Execution
    original_start: Callable[..., None] = execution_class.start

    @functools.wraps(original_start)
    def start(self: Any) -> None:
        original_start(self)
        emit(self, starting=True)

    execution_class.start = start
    communication = module.BaseExecutionWorkerCommunication
    original_terminated: Callable[..., None] = communication.terminated

    @functools.wraps(original_terminated)
    def terminated(self: Any) -> None:
        original_terminated(self)
        emit(self.execution)

    communication.terminated = terminated
