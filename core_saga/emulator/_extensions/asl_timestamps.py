"""ASL timestamps: fractions of a second, UTC offsets, and the server's time zone.

The gaps (moto 5.2.5): the interpreter parses ASL timestamps with
``strptime("%Y-%m-%dT%H:%M:%SZ")`` only.

- Choice ``Timestamp*`` comparisons: a timestamp with fractions of a second
  (``2026-01-31T12:00:00.123Z``, which is how AWS writes ``$$.State.EnteredTime`` and
  ``$$.Execution.StartTime``) or with an offset does not parse, and the comparison is
  silently *false* — a deadline check falls through to ``Default``.
- Wait ``Timestamp``/``TimestampPath``: compared with the naive *local* time of the
  server (off by the UTC offset unless the machine runs in UTC), fractions are dropped
  and the remaining seconds truncated, so the wait ends up to ~2 s early; offsets are
  rejected.

The fix: one RFC 3339 parser (``T``, fractions of any length, ``Z`` or ``±hh:mm``, as the
ASL spec asks) for both, giving aware UTC datetimes; a timestamp wait lasts until the
moment, rounded up to the whole second (the interpreter waits in whole seconds).
"""

from __future__ import annotations

import datetime
import importlib
import math
import re
from typing import Any

_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def parse_timestamp(value: Any) -> datetime.datetime | None:
    """An RFC 3339 timestamp as an aware UTC datetime; None when `value` is not one."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(datetime.UTC)


def apply() -> None:
    """Replace the Choice operators' and the Wait state's timestamp parsing."""
    is_operator: Any = importlib.import_module(
        "moto.stepfunctions.parser.asl.component.state.choice.comparison.operator"
        ".implementations.is_operator")
    wait: Any = importlib.import_module(
        "moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp")
    failure: Any = importlib.import_module(
        "moto.stepfunctions.parser.asl.component.common.error_name.failure_event")

    is_operator.IsTimestamp.string_to_timestamp = staticmethod(parse_timestamp)
    wait.Timestamp._from_timestamp_string = staticmethod(parse_timestamp)

    def _get_wait_seconds(self: Any, env: Any) -> int:
        self.string.eval(env=env)
        text = env.stack.pop()
        moment = parse_timestamp(text)
        if moment is None:
            raise failure.FailureEventException(self._create_failure_event(env, text))
        remaining = (moment - datetime.datetime.now(datetime.UTC)).total_seconds()
        return max(0, math.ceil(remaining))

    wait.Timestamp._get_wait_seconds = _get_wait_seconds
