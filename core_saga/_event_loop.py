"""The event loop a worker process runs on: uvloop where it is installed, asyncio's own
otherwise (``WorkerSettings.event_loop``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar, get_args

T = TypeVar("T")

EventLoopChoice = Literal["auto", "asyncio", "uvloop"]
"""``auto``: uvloop if it can be imported, else asyncio; ``uvloop``: uvloop or an error
at start; ``asyncio``: the standard library's loop."""

EVENT_LOOPS: tuple[EventLoopChoice, ...] = get_args(EventLoopChoice)


def loop_factory(choice: str = "auto") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the chosen loop for :class:`asyncio.Runner` (None: asyncio's own).

    Raises ValueError for a choice that is not one of :data:`EVENT_LOOPS`, and for
    ``uvloop`` when uvloop is not installed."""
    if choice not in EVENT_LOOPS:
        raise ValueError(f"event loop {choice!r}: expected one of {', '.join(EVENT_LOOPS)}")
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ValueError("event loop 'uvloop' asked for, but uvloop is not installed "
                             "(pip install 'stepsaga[cli]', or uvloop)") from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: which kind `loop` is (for logs and benchmarks)."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def run_async(main: Coroutine[Any, Any, T], *, event_loop: str = "auto") -> T:
    """Run `main` to the end on a new event loop of the chosen kind, as
    :func:`asyncio.run` does (the loop closed, its async generators and default
    executor shut down). What ``stepsaga worker`` and ``python -m
    examples.order_to_cash`` run their worker on, with ``WorkerSettings.event_loop``.

    uvloop (libuv under asyncio's API) spends less CPU per callback, socket read and
    write than asyncio's loop; a worker's process is mostly such callbacks, between the
    database's and the queue's round trips."""
    try:
        factory = loop_factory(event_loop)
    except ValueError:
        main.close()  # never awaited: no "coroutine was never awaited" warning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
