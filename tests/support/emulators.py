"""Emulators of a test's own: ours with extra extension modules, or a plain moto."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
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


@contextlib.contextmanager
def plain_moto_server() -> Iterator[str]:
    """A bare ``moto.server`` (none of our extensions, execution off) on a free loopback
    port, as someone who starts moto by hand gets; its endpoint URL. Stopped after."""
    from core_saga.emulator import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                "-p", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"plain moto on {url} did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
