"""pytest fixtures for the emulator. Register them in the root ``tests/conftest.py``
with ``pytest_plugins = ["core_saga.emulator.pytest_plugin"]`` (pytest allows
``pytest_plugins`` only there), or on the command line with
``-p core_saga.emulator.pytest_plugin``.

- ``emulator`` (session): one moto server for the whole run (or the one named by
  ``STEPSAGA_AWS_ENDPOINT_URL``).
- ``aws`` (function): an :class:`AwsScope` on that server whose names are unique to the
  test, so tests share the server without seeing each other's queues, buses and state
  machines.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ._emulator import Emulator, QueueInfo, start_emulator

__all__ = ["AwsScope", "aws", "emulator"]


class AwsScope:
    """The session's emulator seen from one test: every name gets the test's prefix."""

    def __init__(self, emulator: Emulator, prefix: str) -> None:
        self.emulator = emulator
        self.prefix = prefix

    def name(self, base: str) -> str:
        """`base` with this test's prefix (``t1a2b3c-orders``)."""
        return f"{self.prefix}{base}"

    def client(self, service: str) -> Any:
        """The emulator's boto3 client for `service`."""
        return self.emulator.boto3_client(service)

    def create_queue(self, base: str, **options: Any) -> QueueInfo:
        """:meth:`Emulator.create_queue` under this test's prefix."""
        return self.emulator.create_queue(self.name(base), **options)

    def create_bus(self, base: str) -> str:
        """:meth:`Emulator.create_bus` under this test's prefix; the bus ARN."""
        return self.emulator.create_bus(self.name(base))

    def create_state_machine(self, base: str, definition: dict[str, Any] | str) -> str:
        """:meth:`Emulator.create_state_machine` under this test's prefix; its ARN."""
        return self.emulator.create_state_machine(self.name(base), definition)

    def run(self, state_machine_arn: str, payload: Any = None, *,
            timeout: float = 30.0) -> dict[str, Any]:
        """Start an execution with `payload` as its input (JSON-encoded) and wait for its
        end; the DescribeExecution answer (``status``, ``output``, ``error``, ``cause``)."""
        started = self.client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn,
            input=json.dumps({} if payload is None else payload))
        return self.emulator.wait_for_execution(started["executionArn"], timeout=timeout)


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """One moto server for the test session (queues are named per test)."""
    with start_emulator() as running:
        yield running


@pytest.fixture
def aws(emulator: Emulator) -> AwsScope:
    """The session's emulator with names unique to this test."""
    return AwsScope(emulator, f"t{uuid.uuid4().hex[:7]}-")
