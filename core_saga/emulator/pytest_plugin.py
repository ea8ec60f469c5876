"""pytest fixtures for the emulator: register with
``pytest_plugins = ["core_saga.emulator.pytest_plugin"]``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._emulator import Emulator, start_emulator


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """One moto server for the test session (queues are named per test)."""
    with start_emulator() as running:
        yield running
