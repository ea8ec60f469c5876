"""Emulator extension (a proposal for ``core_saga/emulator/_extensions``): every Retry
attempt of a ``.waitForTaskToken`` task gets a fresh task token and waits anew.

The gap (moto 5.2.5): the token is made once, when the state is entered
(``StateTaskServiceCallback._eval_body``), while the Retry loop
(``ExecutionState._eval_state``) re-runs only ``_eval_execution``. The token's callback
endpoint stays notified after the first attempt (``interrupt_all`` sets its event), so
every retry attempt sends its message with the *same* token and resolves at once with the
previous attempt's outcome — the stale ``SendTaskFailure`` error again, or an instant
``States.Timeout`` — without waiting for an answer. AWS gives each attempt a new token
and waits for it; an answer to an earlier attempt's token gets ``TaskTimedOut``.

The fix: before an attempt whose token was already used, issue a new token (context
object and callback pool). An answer to a token whose attempt is over (its frame ended:
timed out, failed or answered) gets ``InvalidToken``, as an ended execution's does here
(AWS: ``TaskTimedOut``; "the task is gone" either way). ``TaskTimedOut`` itself cannot
be used: moto's ``send_task_*`` turn a consumer error into ``TaskDoesNotExist()``, which
fails to construct — HTTP 500, retried by botocore for seconds.

Loaded by the supervisor-workflow tests with ``start_emulator(extensions=(...))``; the
server imports it, which applies it (idempotent).
"""

from __future__ import annotations

import importlib
from typing import Any

_APPLIED: list[bool] = []
_FRAME = "_stepsaga_attempt_frame"


def apply() -> None:
    """Wrap ``StateTaskServiceCallback._eval_execution`` and ``CallbackPoolManager.notify``
    / ``heartbeat`` (once)."""
    if _APPLIED:
        return
    service = importlib.import_module("moto.stepfunctions.parser.asl.component.state.exec."
                                      "state_task.service.state_task_service_callback")
    callback = importlib.import_module("moto.stepfunctions.parser.asl.eval.callback.callback")
    wait_for_task_token = service.ResourceCondition.WaitForTaskToken
    task_class = service.StateTaskServiceCallback
    pool_class = callback.CallbackPoolManager
    original_execution = task_class._eval_execution
    original_notify = pool_class.notify
    original_heartbeat = pool_class.heartbeat

    def _eval_execution(self: Any, env: Any) -> Any:
        if self.resource.condition != wait_for_task_token:
            return original_execution(self, env)
        task = env.states.context_object.context_object_data.get("Task") or {}
        endpoint = env.callback_pool_manager.get(task.get("Token"))
        if endpoint is None or hasattr(endpoint, _FRAME):  # used by an earlier attempt
            token = env.states.context_object.update_task_token()  # this frame's $$.Task
            endpoint = env.callback_pool_manager.add(token)
        setattr(endpoint, _FRAME, env)  # the attempt's frame: ended when the attempt is
        return original_execution(self, env)

    def _gone(pool: Any, callback_id: str) -> bool:
        frame = getattr(pool.get(callback_id), _FRAME, None)
        return frame is not None and not frame.is_running()

    def notify(self: Any, callback_id: str, outcome: Any) -> bool:
        if _gone(self, callback_id):
            return False  # -> InvalidToken
        result: bool = original_notify(self, callback_id, outcome)
        return result

    def heartbeat(self: Any, callback_id: str) -> bool:
        if _gone(self, callback_id):
            return False
        result: bool = original_heartbeat(self, callback_id)
        return result

    task_class._eval_execution = _eval_execution
    pool_class.notify = notify
    pool_class.heartbeat = heartbeat
    _APPLIED.append(True)


apply()
