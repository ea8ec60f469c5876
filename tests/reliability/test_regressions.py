"""Focused tests for what the fault-injection runs found."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from bridge import ReviewStore
from core_saga.emulator import Emulator, patched_environ
from examples.order_to_cash import create_tables
from examples.order_to_cash.app import provision_local
from examples.order_to_cash.queues import ALL_QUEUES, SHIPPING_QUEUE

from . import invariants
from .fakes import create_fake_tables, fakes_engine
from .harness import Workers, malformed_body
from .plan import TIMINGS
from .worker import WorkerConfig, open_store


@pytest.mark.emulator
def test_local_provisioning_gives_every_queue_a_dead_letter_queue(emulator: Emulator) -> None:
    """Found by the harness: the emulator's queues had no DLQ, so a worker could not
    dead-letter a malformed message (GetQueueUrl of ``<queue>-dlq`` failed) and the
    message came back after every visibility timeout. ``infra/`` gives each queue one."""
    prefix = f"dlq{uuid.uuid4().hex[:5]}-"
    provision_local(emulator.boto3_client, prefix, max_receive_count=7)
    sqs = emulator.boto3_client("sqs")
    for queue in ALL_QUEUES:
        url = sqs.get_queue_url(QueueName=prefix + queue)["QueueUrl"]
        policy = json.loads(sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"])
        assert policy["deadLetterTargetArn"].endswith(f":{prefix}{queue}-dlq"), queue
        assert int(policy["maxReceiveCount"]) == 7
        sqs.get_queue_url(QueueName=f"{prefix}{queue}-dlq")  # exists


async def _one_worker(emulator: Emulator, tmp_path: Path, prefix: str) -> Workers:
    """One harness worker on SQLite in `tmp_path`, with its queues and tables; not
    started."""
    resources = await asyncio.to_thread(
        provision_local, emulator.boto3_client, prefix, manual_review=TIMINGS.review,
        slow_shipping=TIMINGS.shipping)  # the shipped maxReceiveCount, as the harness
    config = WorkerConfig(
        index=0, seed=1, database_url=f"sqlite+aiosqlite:///{tmp_path / 'saga.db'}",
        schema=None, fakes_url=f"sqlite+aiosqlite:///{tmp_path / 'outside.db'}",
        endpoint_url=emulator.endpoint_url, region=emulator.region, prefix=prefix,
        bus=resources.bus_name, gateway_transient=0.0, duplicate=0.0, delay=0.0)
    store = open_store(config)
    reviews = ReviewStore.open(store)
    fakes = fakes_engine(config.fakes_url, None)
    try:
        await create_tables(store)
        await reviews.create_table()
        await create_fake_tables(fakes)
    finally:
        await reviews.close()
        await fakes.dispose()
        await store.close()
    logs = tmp_path / "logs"
    logs.mkdir()
    return Workers([config], logs)


@pytest.mark.emulator
@pytest.mark.timeout(120)
async def test_a_worker_restarted_just_before_the_end_still_stops_cleanly(
        emulator: Emulator, tmp_path: Path) -> None:
    """Found by CI: the harness SIGTERMed a worker restarted (after a SIGKILL) a moment
    before the run ended, while it was still importing, before it had installed its
    handlers; it died of the signal (exit -15) instead of stopping. The harness now
    waits for a worker to say it is ready before it asks it to stop."""
    workers = await _one_worker(emulator, tmp_path, f"stop{uuid.uuid4().hex[:5]}-")
    with patched_environ(emulator.env()):
        workers.start(0)
        workers.kill(0)
        workers.start(0)          # the restart, then at once the end of the run
        codes = await asyncio.to_thread(workers.stop_all)
    assert codes == [0], (workers.logs / "worker-0.log").read_text()
    assert workers.is_ready(0)


@pytest.mark.emulator
@pytest.mark.timeout(120)
async def test_a_malformed_message_put_on_a_queue_at_the_end_is_waited_for(
        emulator: Emulator, tmp_path: Path) -> None:
    """Found by CI: the harness settled as soon as every order had ended and the outbox
    was empty, then stopped the workers; an oversize message put on the shipping queue
    a moment before the last order ended had not been dead-lettered yet and was
    reported missing from the error store. The run now settles only once every
    injected message is there, which the worker does within its usual delay."""
    prefix = f"late{uuid.uuid4().hex[:5]}-"
    workers = await _one_worker(emulator, tmp_path, prefix)
    sqs = emulator.boto3_client("sqs")
    url = sqs.get_queue_url(QueueName=prefix + SHIPPING_QUEUE)["QueueUrl"]
    malformed = {"chaos-bad-1": f"oversize message on {SHIPPING_QUEUE}"}
    store = open_store(workers.configs[0])
    try:
        with patched_environ(emulator.env()):
            workers.start(0)
            sqs.send_message(QueueUrl=url, MessageBody=malformed_body("oversize",
                                                                      "chaos-bad-1"))
            # No orders, an empty outbox: what the harness used to take as the end.
            assert not await store.pending_outbox()
            assert not await invariants.settled(store, [], malformed)
            deadline = asyncio.get_running_loop().time() + 60
            while not await invariants.settled(store, [], malformed):
                assert asyncio.get_running_loop().time() < deadline, \
                    (workers.logs / "worker-0.log").read_text()
                await asyncio.sleep(0.2)
            codes = await asyncio.to_thread(workers.stop_all)
        assert codes == [0]
        assert await invariants.check_error_store(store, malformed) == []
        [record] = await store.list_errors()
        assert record.endpoint.endswith(SHIPPING_QUEUE)
        assert "chaos-bad-1" in record.body and record.reason
    finally:
        await store.close()
