"""SendTaskFailure carries its ``cause``.

The gap (moto 5.2.5): ``StepFunctionResponse.send_task_failure`` reads ``taskToken`` and
``error`` from the request but not ``cause``, so the failed task's history event has no
cause and a Catch's ResultPath gets ``{"Error": ..., "Cause": null}``. The interpreter
below it already carries a cause; only the request handler drops it.

The fix: the handler passes ``cause`` on, as AWS does (the Catch gets
``{"Error": error, "Cause": cause}`` and the ``TaskFailed`` event shows both).
"""

from __future__ import annotations

import importlib
from typing import Any


def apply() -> None:
    """Replace ``moto.stepfunctions.responses.StepFunctionResponse.send_task_failure``."""
    responses = importlib.import_module("moto.stepfunctions.responses")
    empty_result = importlib.import_module("moto.core.responses").EmptyResult

    def send_task_failure(self: Any) -> Any:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"),
            cause=self._get_param("cause"))
        return empty_result()

    responses.StepFunctionResponse.send_task_failure = send_task_failure
