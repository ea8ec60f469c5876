"""``$$.Execution.StartTime`` and ``$$.State.EnteredTime`` as AWS writes them.

The gaps (moto 5.2.5):

- ``$$.Execution.StartTime`` is a Python ``datetime`` in the context object, not a
  string. A workflow that copies it (or the whole ``$$``) into its data makes
  DescribeExecution answer HTTP 500 (``datetime is not JSON serializable``), and a
  task that sends it fails.
- ``$$.State.EnteredTime`` is ``2026-01-31T12:00:00.123456+00:00``; AWS writes
  ``2026-01-31T12:00:00.123Z``. Both parse as ISO 8601, but string comparisons and
  strict parsers see the difference.

The fix: both are written as AWS writes them (UTC, milliseconds, ``Z``), by wrapping the
two context-object constructors where the interpreter builds them.
"""

from __future__ import annotations

import datetime
import importlib
from typing import Any


def aws_timestamp(value: datetime.datetime | str) -> str:
    """``2026-01-31T12:00:00.123Z`` from a datetime or an ISO 8601 string."""
    moment = datetime.datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    moment = moment.astimezone(datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def apply() -> None:
    """Wrap ``ExecutionData`` in the execution worker and ``StateData`` in the state
    base class (the names those modules build the context object with)."""
    worker: Any = importlib.import_module("moto.stepfunctions.parser.backend.execution_worker")
    state: Any = importlib.import_module("moto.stepfunctions.parser.asl.component.state.state")
    execution_data, state_data = worker.ExecutionData, state.StateData

    def make_execution_data(**fields: Any) -> Any:
        if fields.get("StartTime") is not None:
            fields["StartTime"] = aws_timestamp(fields["StartTime"])
        return execution_data(**fields)

    def make_state_data(**fields: Any) -> Any:
        if fields.get("EnteredTime") is not None:
            fields["EnteredTime"] = aws_timestamp(fields["EnteredTime"])
        return state_data(**fields)

    worker.ExecutionData = make_execution_data
    state.StateData = make_state_data
