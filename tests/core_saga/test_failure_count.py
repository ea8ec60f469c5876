"""A message is dead-lettered after its handler's failures, counted in the store: not
after its receives, which a worker killed while holding it also spends."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core_saga import ConsumeContext, Consumer, Envelope, Message
from core_saga._settings import WorkerSettings
from core_saga._worker import Worker, WorkerConfigurationError
from core_saga.persistence import SagaStore, store_from_url, upgrade, upgrade_sync
from core_saga.transports import InMemoryTransport, TransportMessage

from .test_batched_commits import _DownStore, running
from .test_worker import until

T0 = datetime(2026, 12, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


class Job(Message):
    message_namespace = "t.failures"
    n: int


class FailsFirst(Consumer[Job]):
    """Fails its first `failing` calls, then succeeds."""

    def __init__(self, failing: int) -> None:
        self.failing = failing
        self.calls = 0
        self.done: list[int] = []

    async def consume(self, ctx: ConsumeContext[Job]) -> None:
        self.calls += 1
        if self.calls <= self.failing:
            raise RuntimeError(f"job {ctx.message.n} failed (call {self.calls})")
        self.done.append(ctx.message.n)


def settings(**overrides: object) -> WorkerSettings:
    """The shipped retry settings (5 deliveries, margin 5), with no wait between them."""
    base: dict[str, object] = {"wait_time_seconds": 0, "redelivery_base_seconds": 0,
                               "outbox_poll_seconds": 0.05}
    base.update(overrides)
    return WorkerSettings(**base)  # type: ignore[arg-type]


async def crash_receives(transport: InMemoryTransport, queue: str, times: int) -> None:
    """Receive the queue's message `times` times without settling it, as a worker that is
    killed while holding it does (SQS counts each of those receives)."""
    for _ in range(times):
        [message] = await transport.receive(queue, max_messages=1, wait_seconds=0)
        await transport.change_visibility(queue, message, 0)


def job_worker(store: SagaStore, consumer: FailsFirst, **overrides: object
               ) -> tuple[Worker, InMemoryTransport]:
    """A worker hosting `consumer` on ``jobs``, a queue that dead-letters after 10
    receives (as ``infra/`` deploys them)."""
    transport = InMemoryTransport(visibility_timeout=5, max_receive_count=10)
    worker = Worker(settings(**overrides), store=store, transport=transport)
    worker.add_consumer(consumer, queue="jobs")
    return worker, transport


async def send_job(transport: InMemoryTransport, n: int) -> Envelope:
    envelope = Envelope(Job(n=n))
    await transport.send_batch("jobs", [TransportMessage(envelope.encode(), f"j{n}", "raw")])
    return envelope


# -- the store's count ------------------------------------------------------------------

async def test_the_store_counts_failures_per_endpoint_and_message(store: SagaStore) -> None:
    assert await store.count_failure("a", "m1", "RuntimeError: one", T0) == 1
    assert await store.count_failure("a", "m1", "RuntimeError: two", T0) == 2
    assert await store.count_failure("b", "m1", "RuntimeError: one", T0) == 1
    assert await store.count_failure("a", "m2", "RuntimeError: one", T0) == 1
    async with store.transaction() as tx:
        assert await tx.count_failure("a", "m1", "RuntimeError: three", T0) == 3
        await tx.forget_failures("a", "m1")
    assert await store.count_failure("a", "m1", "RuntimeError: again", T0) == 1


async def test_a_rolled_back_count_is_not_counted(store: SagaStore) -> None:
    await store.count_failure("a", "m1", "RuntimeError: one", T0)
    with pytest.raises(LookupError):
        async with store.transaction() as tx:
            await tx.count_failure("a", "m1", "RuntimeError: two", T0)
            await tx.forget_failures("a", "m1")
            raise LookupError("rolled back")
    assert await store.count_failure("a", "m1", "RuntimeError: two", T0) == 2


async def test_retention_drops_the_counts_of_messages_that_stopped_failing(
        store: SagaStore) -> None:
    await store.count_failure("a", "old", "RuntimeError: x", T0)
    await store.count_failure("a", "new", "RuntimeError: x", T0 + timedelta(hours=2))
    await store.purge(inbox_before=T0 + timedelta(hours=1),
                      outbox_before=T0 + timedelta(hours=1))
    assert await store.count_failure("a", "old", "RuntimeError: x", T0) == 1
    assert await store.count_failure("a", "new", "RuntimeError: x", T0) == 2


# -- the worker ----------------------------------------------------------------------------

async def test_crashes_do_not_spend_a_messages_deliveries(store: SagaStore) -> None:
    """Four receives lost to killed workers, then a handler that fails once: the message
    is retried and handled, not dead-lettered on its first failure (the receive count
    was 5 = max_deliveries)."""
    consumer = FailsFirst(failing=1)
    worker, transport = job_worker(store, consumer)
    await send_job(transport, 1)
    await crash_receives(transport, "jobs", 4)
    async with running(worker):
        await until(lambda: asyncio.sleep(0, consumer.done == [1]))
    assert consumer.calls == 2
    assert transport.dead_letters("jobs") == []
    assert await store.list_errors() == []


async def test_a_message_is_dead_lettered_after_max_deliveries_failures(
        store: SagaStore) -> None:
    """Five failures: the error store keeps it with its reason, and its count is gone,
    so that sent back from the dead-letter queue it has five deliveries again."""
    consumer = FailsFirst(failing=100)
    worker, transport = job_worker(store, consumer)
    envelope = await send_job(transport, 2)
    async with running(worker):
        await until(lambda: asyncio.sleep(0, bool(transport.dead_letters("jobs"))))
    assert consumer.calls == 5
    assert transport.dead_letters("jobs") == [
        (envelope.encode(), "RuntimeError: job 2 failed (call 5)")]
    [error] = await store.list_errors()
    assert error.message_id == envelope.message_id
    assert await store.count_failure("jobs", envelope.message_id, "again", T0) == 1


async def test_a_failure_on_the_last_receive_sqs_allows_is_dead_lettered_with_its_reason(
        store: SagaStore) -> None:
    """The queue moves a message to its DLQ after 10 receives, without a reason: one
    that fails on its 10th receive is dead-lettered by the worker, reason kept, though
    its handler failed only once."""
    consumer = FailsFirst(failing=1)
    worker, transport = job_worker(store, consumer)
    await send_job(transport, 3)
    await crash_receives(transport, "jobs", 9)
    async with running(worker):
        await until(lambda: asyncio.sleep(0, bool(transport.dead_letters("jobs"))))
    assert consumer.calls == 1
    assert [reason for _, reason in transport.dead_letters("jobs")] == [
        "RuntimeError: job 3 failed (call 1)"]
    assert [e.reason for e in await store.list_errors()] == [
        "RuntimeError: job 3 failed (call 1)"]


async def test_an_outage_while_counting_a_failure_holds_the_message() -> None:
    """Not counted, not released: kept until the database is back, then run again."""
    store = _DownStore()  # the database goes away just as the failure is to be counted
    store.down = False

    class FailsAsTheDatabaseGoes(FailsFirst):
        async def consume(self, ctx: ConsumeContext[Job]) -> None:
            if self.calls == 0:
                store.down = True
            await super().consume(ctx)

    consumer = FailsAsTheDatabaseGoes(failing=1)
    worker, transport = job_worker(store, consumer, outage_backoff_max_seconds=0.5)
    envelope = await send_job(transport, 4)
    async with running(worker):
        await until(lambda: asyncio.sleep(0, worker.held == 1))
        assert consumer.done == [] and transport.depth("jobs") == 1
        store.down = False
        await until(lambda: asyncio.sleep(0, consumer.done == [4]))
    assert worker.failed == 0
    assert transport.dead_letters("jobs") == []
    assert await store.count_failure("jobs", envelope.message_id, "x", T0) == 1


# -- a database without the table ----------------------------------------------------------

async def test_a_worker_refuses_a_database_whose_migrations_are_behind(tmp_path: Path) -> None:
    """Migrated to 0004 only: the worker names the missing table and the command, before
    it takes a message; once migrated, it runs."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await upgrade(url, revision="0004", packages=["core_saga"])
    store = store_from_url(url, must_exist=True)
    consumer = FailsFirst(failing=0)
    worker, transport = job_worker(store, consumer)
    await send_job(transport, 5)
    try:
        with pytest.raises(WorkerConfigurationError,
                           match=r"lacks the engine's table\(s\) delivery_failures: apply the "
                                 r"packaged migrations \(stepsaga migrate"):
            await worker.run(install_signal_handlers=False)
        assert consumer.calls == 0 and transport.depth("jobs") == 1
        await upgrade(url, packages=["core_saga"])
        worker = Worker(settings(), store=store, transport=transport)
        worker.add_consumer(consumer, queue="jobs")
        async with running(worker):
            await until(lambda: asyncio.sleep(0, consumer.done == [5]))
    finally:
        await store.close()


def test_stepsaga_worker_says_so_and_exits_2(tmp_path: Path) -> None:
    database = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{database}"
    upgrade_sync(url, revision="0004", packages=["core_saga"])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STEPSAGA_DATABASE_URL": url,
           "COLUMNS": "300"}
    refused = subprocess.run(
        [str(Path(sys.executable).with_name("stepsaga")), "worker",
         "tests.core_saga.cli_worker_app:worker"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "refuses to run: the database lacks the engine's table(s) delivery_failures" in \
        " ".join(refused.stderr.split()), refused.stderr
    assert "Traceback" not in refused.stderr
