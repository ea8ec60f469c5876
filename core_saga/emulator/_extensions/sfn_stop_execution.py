"""StopExecution ends an execution ABORTED, whatever it was waiting on.

The gap (moto 5.2.5): StopExecution marks the program stopped, but a
``.waitForTaskToken`` task keeps waiting until its ``TimeoutSeconds`` (the execution
stays RUNNING), and then its ``States.Timeout`` overwrites the stop: the execution
ends FAILED instead of ABORTED, late, and whoever watches its status learns the wrong
thing. On AWS a stopped execution is ABORTED at once.

A second gap: a stop that comes while a Task state evaluates its ``Parameters`` makes
moto prune the bindings not yet evaluated (each component checks that the program
runs), yet the service call is still made with what was built: an SQS message with
half its fields goes out (found by the reliability run: a ``ReviewTask`` with only its
``handoffId``). On AWS a stopped execution makes no further calls.

The fix: StopExecution also interrupts the execution's waiting task tokens, once an
execution (or one of its frames) is stopped a later error or time-out no longer
replaces that state, and a service task of a stopped execution neither calls its
service nor waits for a task token.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any


def _interrupting(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def stop(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        worker = getattr(self, "exec_worker", None)
        pool = getattr(getattr(getattr(worker, "env", None), "callback_pool_manager", None),
                       "_pool", None)
        for endpoint in list((pool or {}).values()):
            endpoint.interrupt_all()

    return stop


def _env_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return kwargs["env"] if "env" in kwargs else args[0]


def _no_call_once_stopped(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def call(self: Any, *args: Any, **kwargs: Any) -> None:
        env = _env_of(args, kwargs)
        if not env.is_running():
            env.stack.append({})  # the caller reads a result; nothing follows a stop
            return None
        return original(self, *args, **kwargs)

    return call


def _no_wait_once_stopped(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def wait(self: Any, *args: Any, **kwargs: Any) -> None:
        if not _env_of(args, kwargs).is_running():
            return None
        return original(self, *args, **kwargs)

    return wait


def _guard_service_tasks() -> None:
    """Every service task class's ``_eval_service_task`` (and the callback pattern's
    wait) does nothing once the execution is stopped."""
    package = "moto.stepfunctions.parser.asl.component.state.exec.state_task.service"
    importlib.import_module(f"{package}.state_task_service_factory")  # every service
    base = importlib.import_module(f"{package}.state_task_service").StateTaskService
    callback = importlib.import_module(f"{package}.state_task_service_callback")
    pending = [base]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if "_eval_service_task" in vars(cls):
            cls._eval_service_task = _no_call_once_stopped(cls._eval_service_task)
    cls = callback.StateTaskServiceCallback
    cls._eval_integration_pattern = _no_wait_once_stopped(cls._eval_integration_pattern)


def apply() -> None:
    """Wrap ``Execution.stop``, ``Environment.set_error``,
    ``Environment.set_timed_out`` and the service tasks' calls."""
    _guard_service_tasks()
    execution = importlib.import_module("moto.stepfunctions.parser.backend.execution")
    execution.Execution.stop = _interrupting(execution.Execution.stop)
    environment = importlib.import_module("moto.stepfunctions.parser.asl.eval.environment")
    program_state = importlib.import_module("moto.stepfunctions.parser.asl.eval.program_state")
    stopped = program_state.ProgramStopped
    cls = environment.Environment
    for name in ("set_error", "set_timed_out"):
        original: Callable[..., None] = getattr(cls, name)

        def guarded(self: Any, *args: Any, _original: Callable[..., None] = original,
                    **kwargs: Any) -> None:
            if isinstance(getattr(self, "_program_state", None), stopped):
                # keep the stop, but wake whoever waits on a change, as the original does
                self.program_state_event.set()
                self.program_state_event.clear()
                return None
            return _original(self, *args, **kwargs)

        setattr(cls, name, functools.wraps(original)(guarded))
