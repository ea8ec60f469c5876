"""Extension asl_timestamps: Choice timestamp comparisons and timestamp waits take
fractions of a second and UTC offsets, and do not depend on the server's time zone
(moto 5.2.5 parses ``%Y-%m-%dT%H:%M:%SZ`` only, in local time)."""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator

import pytest

from core_saga.emulator import Emulator, start_emulator
from core_saga.emulator.pytest_plugin import AwsScope

DEADLINE_CHECK = {"StartAt": "Check", "States": {
    "Check": {"Type": "Choice", "Choices": [
        {"Variable": "$$.State.EnteredTime", "TimestampGreaterThanPath": "$.deadline",
         "Next": "Late"},
        {"Variable": "$.deadline", "TimestampLessThan": "2030-01-01T00:00:00.500Z",
         "Next": "Soon"}],
        "Default": "Later"},
    "Late": {"Type": "Pass", "Result": "late", "End": True},
    "Soon": {"Type": "Pass", "Result": "soon", "End": True},
    "Later": {"Type": "Pass", "Result": "later", "End": True}}}


@pytest.fixture(scope="module")
def tokyo(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[AwsScope]:
    """A server whose local time is UTC+9."""
    monkeypatch_module.setenv("TZ", "Asia/Tokyo")
    monkeypatch_module.delenv("STEPSAGA_AWS_ENDPOINT_URL", raising=False)
    with start_emulator() as running:
        yield AwsScope(running, "tokyo-")


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.mark.parametrize(("deadline", "branch"), [
    ("2020-01-01T00:00:00Z", "late"),
    ("2020-01-01T00:00:00.250Z", "late"),
    ("2029-12-31T23:59:59+02:00", "soon"),
    ("2099-01-01T00:00:00Z", "later"),
])
def test_choice_compares_aws_timestamps(aws: AwsScope, deadline: str, branch: str) -> None:
    machine = aws.create_state_machine("deadline", DEADLINE_CHECK)
    described = aws.run(machine, {"deadline": deadline})
    assert json.loads(described["output"]) == branch


@pytest.mark.parametrize("zone", [datetime.UTC, datetime.timezone(datetime.timedelta(hours=-5))])
def test_a_timestamp_wait_lasts_until_then_on_a_server_off_utc(
        tokyo: AwsScope, zone: datetime.tzinfo) -> None:
    assert isinstance(tokyo.emulator, Emulator)
    machine = tokyo.create_state_machine(f"wait-{id(zone)}", {"StartAt": "W", "States": {
        "W": {"Type": "Wait", "TimestampPath": "$.until", "End": True}}})
    until = datetime.datetime.now(zone) + datetime.timedelta(seconds=1.2)
    text = until.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    started = time.monotonic()
    described = tokyo.run(machine, {"until": text}, timeout=15)
    took = time.monotonic() - started
    assert described["status"] == "SUCCEEDED"
    assert 1.1 <= took < 3, took
