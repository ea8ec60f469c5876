"""StartExecution without a name gets a generated one.

The gap (moto 5.2.5): with ``execute_state_machine`` on, StartExecution without
``name`` makes an execution named ``None`` (its ARN ends in ``:None``), and a second
start without a name fails with ``ExecutionAlreadyExists``. AWS generates a UUID.

The fix: the interpreter backend's ``start_execution`` names an unnamed execution with a
fresh UUID (moto's non-executing backend already does).
"""

from __future__ import annotations

import functools
import importlib
import uuid
from collections.abc import Callable
from typing import Any


def apply() -> None:
    """Wrap ``StepFunctionsParserBackend.start_execution``."""
    models = importlib.import_module("moto.stepfunctions.parser.models")
    backend = models.StepFunctionsParserBackend
    original: Callable[..., Any] = backend.start_execution

    @functools.wraps(original)
    def start_execution(self: Any, state_machine_arn: str, name: str | None = None,
                        *args: Any, **kwargs: Any) -> Any:
        return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    backend.start_execution = start_execution
