"""DescribeExecution returns a string (or null) output as JSON.

The gap (moto 5.2.5): when an execution run by the interpreter ends with a JSON
*string* (a Pass ``"Result": "late"``, an ``OutputPath`` that selects a string),
DescribeExecution answers ``"output": "late"`` instead of the JSON text ``"\\"late\\""``,
and a client's ``json.loads`` fails; an output of ``null`` is left out altogether. (The
handler treats every ``str`` as JSON text already, which holds only for moto's
non-executing backend.)

The fix: after moto's handler, a succeeded interpreter execution's string or null output
is JSON-encoded.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Callable
from typing import Any


def apply() -> None:
    """Wrap ``StepFunctionResponse.describe_execution``."""
    responses = importlib.import_module("moto.stepfunctions.responses")
    interpreted = importlib.import_module(
        "moto.stepfunctions.parser.backend.execution").Execution
    original: Callable[..., Any] = responses.StepFunctionResponse.describe_execution

    @functools.wraps(original)
    def describe_execution(self: Any) -> Any:
        answer = original(self)
        body = answer.result
        if isinstance(body, dict) and body.get("status") == "SUCCEEDED":
            execution = self.stepfunction_backend.describe_execution(body["executionArn"])
            if isinstance(execution, interpreted) and (
                    execution.output is None or isinstance(execution.output, str)):
                body["output"] = json.dumps(execution.output)
        return answer

    responses.StepFunctionResponse.describe_execution = describe_execution
