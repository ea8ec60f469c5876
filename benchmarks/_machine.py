"""Print what machine and versions a benchmark ran on."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version


def describe(packages: Sequence[str] = ("sqlalchemy", "asyncpg", "aiosqlite", "pydantic")
             ) -> str:
    """A one-paragraph description of the machine and package versions."""
    versions = []
    for name in packages:
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} (absent)")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return (f"machine: {platform.machine()}, {os.cpu_count()} cores, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
            f"load {load[0]:.2f}\nversions: {', '.join(versions)}")


def summary(values: Sequence[float]) -> str:
    """Median and spread (min–max) of repeated measurements."""
    return (f"median {statistics.median(values):9.1f}  "
            f"spread {min(values):.1f}–{max(values):.1f}  (n={len(values)})")
