"""A moto server of a test's own, with extra extension modules loaded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def start_dedicated_emulator(extensions: tuple[str, ...], log_file: Path) -> Any:
    """Start a fresh emulator whose server also imports `extensions` (modules under
    ``tests.support``), even when ``STEPSAGA_AWS_ENDPOINT_URL`` names a shared one.

    ``start_emulator`` sets ``MOTO_PORT`` process-wide; it is put back here, so the
    session's emulator stays the one ``MOTO_PORT`` names. The caller stops the result.
    """
    from core_saga.emulator import ENDPOINT_ENV, patched_environ, start_emulator

    search_path = os.pathsep.join(  # the server imports tests.support.*
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    with patched_environ({ENDPOINT_ENV: None, "MOTO_PORT": os.environ.get("MOTO_PORT"),
                          "PYTHONPATH": search_path}):
        running: Any = start_emulator(extensions=extensions, log_file=log_file)
    running.log_file = log_file
    return running
