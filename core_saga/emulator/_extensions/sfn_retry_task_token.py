"""Each Retry attempt of a ``.waitForTaskToken`` task gets a new task token and waits.

The gap (moto 5.2.5): the token is made once, when the state is entered
(``StateTaskServiceCallback._eval_body``), while the Retry loop
(``ExecutionState._eval_state``) re-runs only ``_eval_execution``. The token's callback
endpoint is already notified after the first attempt, so every retry attempt sends its
message with the *same* token and resolves at once with the previous attempt's outcome
(the same SendTaskFailure error again, or an instant ``States.Timeout``) without waiting.
AWS gives each attempt a new token and waits for it. (Found, and first fixed, by the
supervisor-workflow tests: ``tests/supervisor_workflows/moto_retry_task_token.py``.)

The fix: an attempt that finds its token already used by an earlier attempt issues a new
one (``$$.Task.Token`` and the callback pool) and marks the old one as ended, so an
answer to it gets ``TaskTimedOut`` (through ``sfn_task_tokens``).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

_USED = "_stepsaga_used_by_an_attempt"


def apply() -> None:
    """Wrap ``StateTaskServiceCallback._eval_execution`` (one attempt of the task)."""
    service = importlib.import_module(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service"
        ".state_task_service_callback")
    callback = importlib.import_module("moto.stepfunctions.parser.asl.eval.callback.callback")
    task_class = service.StateTaskServiceCallback
    wait_for_task_token = service.ResourceCondition.WaitForTaskToken
    original: Callable[..., None] = task_class._eval_execution

    @functools.wraps(original)
    def _eval_execution(self: Any, env: Any) -> None:
        if self.resource.condition == wait_for_task_token:
            task = env.states.context_object.context_object_data.get("Task") or {}
            endpoint = env.callback_pool_manager.get(task.get("Token"))
            if endpoint is not None and getattr(endpoint, _USED, False):
                endpoint.report(callback.CallbackConsumerTimeout())  # the old token is gone
                token = env.states.context_object.update_task_token()  # this attempt's $$.Task
                endpoint = env.callback_pool_manager.add(token)
            if endpoint is not None:
                setattr(endpoint, _USED, True)
        original(self, env)

    task_class._eval_execution = _eval_execution
