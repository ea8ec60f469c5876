"""End to end over SQS on the emulator: worker processes, PostgreSQL, crashes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core_saga import Envelope
from core_saga.emulator import Emulator
from core_saga.persistence import SqlStore
from examples.quickstart.article_saga import OrderSubmitted
from examples.quickstart.services import QUEUES, ledger, metadata

from ..conftest import PG_URL, requires_postgres

ROOT = Path(__file__).resolve().parents[2]


class Deployment:
    """Queues with a unique prefix, a fresh PostgreSQL schema, and worker processes."""

    def __init__(self, emulator: Emulator, store: SqlStore, prefix: str) -> None:
        self.emulator = emulator
        self.store = store
        self.prefix = prefix
        self.workers: list[subprocess.Popen[bytes]] = []
        self.sqs = emulator.boto3_client("sqs")
        self.urls = {q: emulator.create_queue(prefix + q, max_receive_count=10,
                                              visibility_timeout=5).url for q in QUEUES}

    def start_worker(self, log: Path) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.emulator.env(),
               "STEPSAGA_DATABASE_URL": PG_URL, "STEPSAGA_DATABASE_SCHEMA": self.store.schema
               or "", "STEPSAGA_QUEUE_PREFIX": self.prefix, "STEPSAGA_WAIT_TIME_SECONDS": "1",
               "STEPSAGA_VISIBILITY_TIMEOUT": "5", "STEPSAGA_OUTBOX_POLL_SECONDS": "0.5",
               "STEPSAGA_CONCURRENCY": "16", "STEPSAGA_REDELIVERY_BASE_SECONDS": "0.5",
               "PYTHONPATH": str(ROOT)}
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "core_saga.cli", "worker",
                 "tests.sqs.e2e_app:build", "--log-level", "WARNING"],
                env=env, cwd=ROOT, stdout=out, stderr=out)
        self.workers.append(proc)
        return proc

    def submit(self, orders: list[str], pace_per_second: float = 200) -> None:
        for start in range(0, len(orders), 10):
            entries = [{"Id": str(i), "MessageBody": Envelope(
                OrderSubmitted(order_id=o, amount=Decimal("9.99"))).encode().decode()}
                for i, o in enumerate(orders[start:start + 10])]
            self.sqs.send_message_batch(QueueUrl=self.urls["article-order-saga"],
                                        Entries=entries)
            time.sleep(10 / pace_per_second)  # moto slows as a queue fills: keep it drained

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _states(store: SqlStore) -> dict[str, int]:
    return await store.count_instances("ArticleOrderSaga")


async def _effect_counts(store: SqlStore) -> list[tuple[str, str, int]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(ledger.c.order_id, ledger.c.kind, func.count())
                                  .group_by(ledger.c.order_id, ledger.c.kind))
        return [(r[0], r[1], int(r[2])) for r in rows]


@pytest.fixture
async def deployment(emulator: Emulator) -> AsyncIterator[Deployment]:
    store = SqlStore.from_url(PG_URL, schema=f"e2e_{uuid.uuid4().hex[:8]}")
    await store.create_schema()
    async with store.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    made = Deployment(emulator, store, f"e2e{uuid.uuid4().hex[:5]}-")
    yield made
    await asyncio.to_thread(made.stop)
    await store.drop_schema()
    await store.close()


async def _wait_for(store: SqlStore, total: int, timeout: float,
                    procs: list[subprocess.Popen[bytes]], log: Path) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        states = await _states(store)
        if states.get("Completed", 0) == total:
            return states
        for proc in procs:
            if proc.poll() not in (None, -9):
                raise AssertionError(f"a worker exited: {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not all sagas completed: {states}\n"
                                 f"{log.read_text()[-3000:]}")
        await asyncio.sleep(1)


def _assert_each_effect_once(counts: list[tuple[str, str, int]], orders: list[str]) -> None:
    assert [c for c in counts if c[2] != 1] == [], "a side effect happened twice"
    by_kind: dict[str, set[str]] = {}
    for order, kind, _ in counts:
        by_kind.setdefault(kind, set()).add(order)
    for kind in ("charge", "reserve", "ship"):
        assert by_kind[kind] == set(orders), kind
    assert "refund" not in by_kind


@pytest.mark.emulator
@pytest.mark.postgres
@pytest.mark.slow
@requires_postgres
async def test_500_sagas_through_sqs_with_two_worker_processes(
        deployment: Deployment, tmp_path: Path) -> None:
    log = tmp_path / "workers.log"
    procs = [deployment.start_worker(log), deployment.start_worker(log)]
    orders = [f"o-{i:04d}" for i in range(500)]
    await asyncio.to_thread(deployment.submit, orders)
    states = await _wait_for(deployment.store, 500, 300, procs, log)
    assert states == {"Completed": 500}
    _assert_each_effect_once(await _effect_counts(deployment.store), orders)
    await asyncio.to_thread(deployment.stop)
    assert [p.returncode for p in procs] == [0, 0]  # SIGTERM: a graceful exit
    assert await deployment.store.pending_outbox() == []


@pytest.mark.emulator
@pytest.mark.postgres
@pytest.mark.slow
@requires_postgres
async def test_a_worker_killed_midway_loses_nothing(deployment: Deployment,
                                                    tmp_path: Path) -> None:
    log = tmp_path / "workers.log"
    victim = deployment.start_worker(log)
    survivor = deployment.start_worker(log)
    orders = [f"k-{i:04d}" for i in range(500)]
    submitting = asyncio.create_task(asyncio.to_thread(deployment.submit, orders))
    while (await _states(deployment.store)).get("Completed", 0) < 100:
        await asyncio.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    await submitting
    states = await _wait_for(deployment.store, 500, 300, [survivor], log)
    assert states == {"Completed": 500}
    _assert_each_effect_once(await _effect_counts(deployment.store), orders)
    await asyncio.sleep(11)  # a dead process's outbox leases run out, then are flushed
    deadline = time.monotonic() + 30
    while await deployment.store.pending_outbox():
        assert time.monotonic() < deadline, "outbox rows left undispatched"
        await asyncio.sleep(1)
