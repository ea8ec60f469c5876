"""What the benchmarks share: the machine and versions they ran on, the summary of
repeated figures, interleaved repeats, the PostgreSQL server they use, and their
comma-separated number options."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar

from core_saga import run_async
from core_saga._event_loop import loop_name

K = TypeVar("K")
T = TypeVar("T")

PG = os.environ.get("STEPSAGA_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
"""The PostgreSQL server (libpq URL) the benchmarks use; ``STEPSAGA_BENCH_PG`` changes it."""


def describe(packages: Sequence[str] = ("sqlalchemy", "asyncpg", "aiosqlite", "pydantic")
             ) -> str:
    """A one-paragraph description of the machine and package versions."""
    versions = []
    for name in packages:
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} (absent)")
    try:
        loop = f", event loop {loop_name(asyncio.get_running_loop())}"
    except RuntimeError:  # not called from a running loop
        loop = ""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return (f"machine: {platform.machine()}, {os.cpu_count()} cores, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
            f"load {load[0]:.2f}{loop}\nversions: {', '.join(versions)}")


def run_main(main: Coroutine[Any, Any, T]) -> T:
    """Run a benchmark's `main` on the event loop a worker would run on
    (``STEPSAGA_EVENT_LOOP``, as ``WorkerSettings.event_loop``: uvloop when installed)."""
    return run_async(main, event_loop=os.environ.get("STEPSAGA_EVENT_LOOP", "auto"))


def summary(values: Sequence[float]) -> str:
    """Median and spread (min–max) of repeated measurements."""
    return (f"median {statistics.median(values):9.1f}  "
            f"spread {min(values):.1f}–{max(values):.1f}  (n={len(values)})")


async def interleave(runs: Mapping[K, Callable[[], Awaitable[T]]], repeats: int
                     ) -> dict[K, list[T]]:
    """Run every variant once per repeat, in turn, so that load drifts on a shared
    machine hit all of them; each variant's results in order."""
    results: dict[K, list[T]] = {key: [] for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            results[key].append(await run())
    return results


def int_list(example: str, *, at_least: int, problem: str) -> Callable[[str], list[int]]:
    """An argparse ``type`` for comma-separated whole numbers, each 1 or more and at least
    `at_least` of them; `example` shows the form, `problem` says what else is wrong."""
    def parse(text: str) -> list[int]:
        try:
            numbers = [int(part) for part in text.split(",") if part.strip()]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: write e.g. {example}") from exc
        if len(numbers) < at_least or min(numbers, default=0) < 1:
            raise argparse.ArgumentTypeError(problem)
        return numbers
    return parse
