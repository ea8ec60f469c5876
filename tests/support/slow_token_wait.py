"""Test-support emulator module: the wait for a task token starts late.

In moto a ``.waitForTaskToken`` task waits for its token in a thread of its own, on a
clock that starts after the service call that handed the token out. This module makes
that call look slow (``DELAY_SECONDS``), so the gap between a state's ``TimeoutSeconds``
firing and that thread giving up is wide enough for a test to answer inside it.
Loaded only by ``tests/emulator/test_ext_sfn_task_tokens.py``'s own emulator.
"""

from __future__ import annotations

import functools
import importlib
import time
from collections.abc import Callable
from typing import Any

DELAY_SECONDS = 3.0


def apply() -> None:
    """Delay the start of every ``CallbackEndpoint.wait``."""
    callback = importlib.import_module("moto.stepfunctions.parser.asl.eval.callback.callback")
    wait: Callable[..., Any] = callback.CallbackEndpoint.wait

    @functools.wraps(wait)
    def late_wait(self: Any, timeout: float | None = None) -> Any:
        time.sleep(DELAY_SECONDS)
        return wait(self, timeout)

    callback.CallbackEndpoint.wait = late_wait
