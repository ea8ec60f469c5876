"""Extension sqs_receive_cost: a receive no longer rebuilds the queue's attributes — three
scans of every message — for each message it hands out (moto 5.2.5 does, so a backlog
makes the emulator collapse). Checked in process on moto's backend: how many times the
attribute dictionary is built, and that the answers did not change."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from moto.sqs import models as sqs_models
from moto.sqs.exceptions import InvalidAttributeName

from core_saga.emulator._extensions import sqs_receive_cost


@pytest.fixture(scope="module", autouse=True)
def extended() -> Iterator[None]:
    backend = sqs_models.SQSBackend
    saved = (backend.is_message_valid_based_on_retention_period,
             backend.get_queue_attributes)
    sqs_receive_cost.apply()
    yield
    (backend.is_message_valid_based_on_retention_period,
     backend.get_queue_attributes) = saved


@pytest.fixture
def backend() -> Any:
    return sqs_models.SQSBackend("us-east-1", "123456789012")


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the builds of any queue's attribute dictionary."""
    counted: list[int] = []
    original = sqs_models.Queue.attributes

    def counting(self: Any) -> dict[str, Any]:
        counted.append(1)
        return original.fget(self)  # type: ignore[no-any-return,attr-defined]

    monkeypatch.setattr(sqs_models.Queue, "attributes", property(counting))
    return counted


def _queue(backend: Any, messages: int, **attributes: str) -> str:
    name = f"q-{uuid.uuid4().hex[:6]}"
    backend.create_queue(name, **attributes)
    for n in range(messages):
        backend.send_message(name, f"m{n}")
    return name


def test_a_receive_does_not_rebuild_the_attributes_per_message(
        backend: Any, builds: list[int]) -> None:
    name = _queue(backend, 200)
    builds.clear()
    received = backend.receive_message(name, 10, 0, 30)
    assert len(received) == 10
    assert builds == []  # moto 5.2.5: 20 builds, each scanning all 200 messages three times


def test_attributes_by_name_are_built_once_and_answer_as_before(
        backend: Any, builds: list[int]) -> None:
    name = _queue(backend, 3, VisibilityTimeout="7")
    builds.clear()
    got = backend.get_queue_attributes(
        name, ["ApproximateNumberOfMessages", "VisibilityTimeout", "RedrivePolicy"])
    assert got == {"ApproximateNumberOfMessages": 3, "VisibilityTimeout": 7}
    assert len(builds) == 1
    assert backend.get_queue_attributes(name, []) == {}
    everything = backend.get_queue_attributes(name, ["All"])
    assert everything["ApproximateNumberOfMessages"] == 3
    with pytest.raises(InvalidAttributeName):
        backend.get_queue_attributes(name, ["VisibilityTimeout", "NoSuchAttribute"])


def test_expired_messages_are_still_not_handed_out(backend: Any) -> None:
    name = _queue(backend, 1, MessageRetentionPeriod="60")
    backend.get_queue(name)._messages[0].sent_timestamp -= 61_000  # sent 61 s ago
    assert backend.receive_message(name, 10, 0, 30) == []
    fresh = _queue(backend, 1, MessageRetentionPeriod="60")
    assert len(backend.receive_message(fresh, 10, 0, 30)) == 1
