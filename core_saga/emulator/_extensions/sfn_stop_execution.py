"""StopExecution ends an execution ABORTED, whatever it was waiting on.

The gap (moto 5.2.5): StopExecution marks the program stopped, but a
``.waitForTaskToken`` task keeps waiting until its ``TimeoutSeconds`` (the execution
stays RUNNING), and then its ``States.Timeout`` overwrites the stop: the execution
ends FAILED instead of ABORTED, late, and whoever watches its status learns the wrong
thing. On AWS a stopped execution is ABORTED at once.

The fix: StopExecution also interrupts the execution's waiting task tokens, and once an
execution (or one of its frames) is stopped, a later error or time-out no longer
replaces that state.
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


def apply() -> None:
    """Wrap ``Execution.stop``, ``Environment.set_error`` and
    ``Environment.set_timed_out``."""
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
