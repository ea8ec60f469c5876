"""Task tokens: heartbeats while a task waits, and ``TaskTimedOut`` once it has ended.

The gaps (moto 5.2.5), for ``.waitForTaskToken`` tasks:

- A task without ``HeartbeatSeconds`` answers SendTaskHeartbeat with ``InvalidToken``;
  AWS accepts the heartbeat (a worker that sends them would take the task for gone).
- A task that has ended (answered, timed out) in an execution that is still running
  *accepts* SendTaskSuccess/SendTaskFailure/SendTaskHeartbeat and ignores them; AWS
  answers ``TaskTimedOut``. A late acknowledgement looks like a success. (moto has a
  path for this, ``CallbackConsumerTimeout``, but never takes it, and its error handling
  there would answer HTTP 500.)
- A task whose ``TimeoutSeconds`` fires is timed out at once by the state (its Catch
  runs), but the thread that waits for the token keeps waiting on its own clock, which
  started after the service call. Until that clock runs out an answer is *accepted* and
  ignored: a late approve of a timed-out review looked like a success. (Found by the
  2000-order reliability run: the window is as long as the SQS send that handed the
  token out.)

The fix: once a task is answered or ends, its token is marked with
``CallbackConsumerTimeout``, and the callback pool turns that mark into ``TaskTimedOut``
(HTTP 400, as AWS). A task ends when its answer arrives, when its wait stops, and when
its state stops waiting (the moment ``TimeoutSeconds`` fires). A
heartbeat is accepted while the task waits, with or without ``HeartbeatSeconds``. Once
the whole execution has ended, moto answers ``InvalidToken``, as before (AWS:
``TaskTimedOut``) — treat both as "the task is gone".
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

TASK_TIMED_OUT = "Task Timed Out: 'Provided task does not exist anymore'"


def apply() -> None:
    """Wrap ``CallbackEndpoint.notify`` (an answer), ``interrupt_all`` (the task ends) and
    ``notify_heartbeat``, ``CallbackPoolManager.notify``/``heartbeat``, and
    ``ExecutionState._evaluate_with_timeout`` (a state with ``TimeoutSeconds`` is done)."""
    callback = importlib.import_module("moto.stepfunctions.parser.asl.eval.callback.callback")
    aws_error = importlib.import_module("moto.stepfunctions.exceptions").AWSError
    endpoint, pool = callback.CallbackEndpoint, callback.CallbackPoolManager
    notify: Callable[..., None] = endpoint.notify
    interrupt_all: Callable[..., None] = endpoint.interrupt_all
    notify_heartbeat: Callable[..., bool] = endpoint.notify_heartbeat

    @functools.wraps(notify)
    def answered(self: Any, outcome: Any) -> None:
        notify(self, outcome)
        self.report(callback.CallbackConsumerTimeout())

    @functools.wraps(interrupt_all)
    def ended(self: Any) -> None:
        self.report(callback.CallbackConsumerTimeout())
        interrupt_all(self)

    @functools.wraps(notify_heartbeat)
    def heartbeat(self: Any) -> bool:
        if self._heartbeat_endpoint is None:
            return True  # nothing to reset; the pool has checked the task still waits
        return notify_heartbeat(self)

    def timed_out_when_ended(method: Callable[..., bool]) -> Callable[..., bool]:
        @functools.wraps(method)
        def call(self: Any, *args: Any, **kwargs: Any) -> bool:
            try:
                return method(self, *args, **kwargs)
            except callback.CallbackNotifyConsumerError:
                raise aws_error(TASK_TIMED_OUT, "TaskTimedOut", 400) from None
        return call

    execute_state = importlib.import_module(
        "moto.stepfunctions.parser.asl.component.state.exec.execute_state")
    evaluate_with_timeout: Callable[..., None] = (
        execute_state.ExecutionState._evaluate_with_timeout)

    @functools.wraps(evaluate_with_timeout)
    def evaluate_within_timeout(self: Any, env: Any) -> None:
        try:
            evaluate_with_timeout(self, env)
        finally:
            # Answered, failed or timed out: the state is done with its token (made in
            # `env` before the timed frame opened) even if moto's waiting thread is not.
            task = env.states.context_object.context_object_data.get("Task")
            token = task.get("Token") if task else None
            endpoint = env.callback_pool_manager.get(token) if token else None
            if endpoint is not None and endpoint.consumer_error is None:
                endpoint.report(callback.CallbackConsumerTimeout())

    execute_state.ExecutionState._evaluate_with_timeout = evaluate_within_timeout
    endpoint.notify = answered
    endpoint.interrupt_all = ended
    endpoint.notify_heartbeat = heartbeat
    pool.notify = timed_out_when_ended(pool.notify)
    pool.heartbeat = timed_out_when_ended(pool.heartbeat)
