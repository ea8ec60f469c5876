"""An outage is not a bad message: with the shipped defaults, a database that goes down,
a disk that fills up or a stuck transaction never costs a message its deliveries, never
dead-letters a valid message, and the work resumes on its own when the outage ends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, insert, select, update
from sqlalchemy.exc import OperationalError

from core_saga import ConsumeContext, Consumer, Message, Worker, WorkerSettings
from core_saga._failures import FailureKind, classify_failure, looks_like_network_failure
from core_saga._worker import WorkerConfigurationError
from core_saga.emulator.pytest_plugin import AwsScope
from core_saga.persistence import AsyncpgStore, SagaStore, SqlStore
from core_saga.transports import InMemoryTransport, SqsTransport, TransportMessage
from tests.support.pg_cluster import PrivateCluster

pytestmark = pytest.mark.timeout(240)

tables = MetaData()
done = Table("outage_done", tables, Column("n", Integer, primary_key=True),
             Column("payload", Text, nullable=False))
hot = Table("outage_hot", tables, Column("sku", String(20), primary_key=True),
            Column("count", Integer, nullable=False))


class Work(Message):
    message_namespace = "t.outage"
    n: int
    payload: str = ""


class Touch(Message):
    message_namespace = "t.outage"
    n: int


class Recorder(Consumer[Work]):
    """A service's own row per message, in the message's transaction."""

    async def consume(self, ctx: ConsumeContext[Work]) -> None:
        await ctx.transaction.execute(insert(done).values(n=ctx.message.n,
                                                          payload=ctx.message.payload))


class HotRow(Consumer[Touch]):
    """Every message updates the same row (a popular SKU)."""

    async def consume(self, ctx: ConsumeContext[Touch]) -> None:
        await ctx.transaction.execute(update(hot).where(hot.c.sku == "popular")
                                      .values(count=hot.c.count + 1))


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached in {timeout} s: {what}")
        await asyncio.sleep(0.1)


async def count_done(store: SagaStore) -> int:
    try:
        async with store.transaction(readonly=True) as tx:
            return len((await tx.scalars(select(done.c.n))).all())
    except Exception:
        return -1


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    try:
        await until(lambda: asyncio.sleep(0, worker._started.is_set() or task.done()), 60,
                    "the worker started")
        if task.done():
            task.result()
        yield task
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, timeout=90)


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    made = PrivateCluster()
    made.start()
    yield made
    made.remove()


async def test_a_database_down_longer_than_the_redelivery_schedule_costs_no_delivery(
        cluster: PrivateCluster, aws: AwsScope) -> None:
    """Shipped defaults: 5 deliveries, backoff 1+2+4+8 s — a 16 s outage used to
    dead-letter valid messages (without a reason: the error store was down too)."""
    queue = aws.create_queue("work")  # the shipped redrive policy
    store = AsyncpgStore.from_url(cluster.url)
    await store.create_schema()
    await store.create_tables(tables)
    settings = WorkerSettings(aws_endpoint_url=aws.emulator.endpoint_url,
                              aws_region=aws.emulator.region, database_url=cluster.url)
    sqs = aws.client("sqs")

    def put(first: int, count: int) -> None:
        for n in range(first, first + count):
            sqs.send_message(QueueUrl=queue.url, MessageBody=_body(Work(n=n)))

    transport = await SqsTransport.connect(settings.sqs())
    worker = Worker(settings, store=store, transport=transport)
    worker.add_consumer(Recorder(), queue=queue.name)
    try:
        async with running(worker):
            put(0, 10)
            await until(lambda: _at_least(store, 10), 60, "the first ten handled")
            cluster.stop("immediate")  # a crash, for every connection in the pool
            put(10, 10)
            await until(lambda: asyncio.sleep(0, not worker.store_health.up), 60,
                        "the worker noticed the outage")
            assert (await worker._ready_checks())["database"] is False
            # The fault's duration, longer than the whole redelivery schedule.
            await asyncio.sleep(16)
            cluster.start()
            await until(lambda: _at_least(store, 20), 120, "every message handled after")
            await until(lambda: asyncio.sleep(0, worker.store_health.up), 60, "ready again")
            assert (await worker._ready_checks())["database"] is True
        assert worker.failed == 0
        assert await store.list_errors() == []
        dead = sqs.receive_message(QueueUrl=queue.dlq_url, MaxNumberOfMessages=10,
                                   WaitTimeSeconds=0).get("Messages", [])
        assert dead == []
        async with store.transaction(readonly=True) as tx:
            assert sorted((await tx.scalars(select(done.c.n))).all()) == list(range(20))
    finally:
        await transport.close()
        await store.close()


async def _at_least(store: SagaStore, wanted: int) -> bool:
    return await count_done(store) >= wanted


def _body(message: Message) -> str:
    from core_saga import Envelope
    from core_saga.extension import new_id

    return Envelope(message=message, message_id=new_id()).encode().decode()


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 16 MB file system of the test's own (tmpfs), so that the disk can fill up."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    where = Path(f"/tmp/stepsaga-small-disk-{uuid.uuid4().hex[:8]}")
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        with contextlib.suppress(OSError):
            where.rmdir()


def fill(path: Path) -> None:
    """Take every free byte of the file system `path` is on."""
    with contextlib.suppress(OSError), open(path, "wb") as filler:
        chunk = b"\0" * (1 << 20)
        while True:
            filler.write(chunk)
            filler.flush()


async def test_a_full_disk_under_sqlite_holds_messages_until_there_is_room(
        small_disk: Path) -> None:
    store = SqlStore.from_url(f"sqlite+aiosqlite:///{small_disk / 'saga.db'}")
    await store.create_schema()
    await store.create_tables(tables)
    transport = InMemoryTransport()
    worker = Worker(WorkerSettings(wait_time_seconds=0), store=store, transport=transport)
    worker.add_consumer(Recorder(), queue="work")
    filler = small_disk / "filler"
    try:
        async with running(worker):
            fill(filler)
            big = "x" * 200_000  # each row needs new pages
            await transport.send_batch("work", [
                TransportMessage(_body(Work(n=n, payload=big)).encode(), str(n), "work")
                for n in range(6)])
            await until(lambda: asyncio.sleep(0, worker.held > 0), 60,
                        "a message was held for the full disk")
            assert worker.failed == 0
            filler.unlink()
            await until(lambda: _at_least(store, 6), 120, "every message handled after")
        assert worker.failed == 0
        assert await store.list_errors() == []
        assert transport.dead_letters("work") == []
    finally:
        with contextlib.suppress(FileNotFoundError):
            filler.unlink()
        await store.close()


async def test_a_transaction_stuck_on_a_hot_row_does_not_halt_the_worker(
        cluster: PrivateCluster) -> None:
    """A frozen process holding a popular row: the messages waiting for it give up after
    the lock timeout (uncounted) until the server ends the idle transaction; the other
    queue is served meanwhile. (Short timeouts: the test is about them.)"""
    store = AsyncpgStore.from_url(cluster.url, lock_timeout=0.5,
                                  idle_in_transaction_timeout=4)
    await store.create_schema()
    await store.create_tables(tables)
    async with store.transaction() as tx:
        await tx.execute(insert(hot).values(sku="popular", count=0))
    stuck = await asyncpg.connect(cluster.url, server_settings={
        "idle_in_transaction_session_timeout": "4000"})
    await stuck.execute("BEGIN")
    await stuck.execute("UPDATE outage_hot SET count = count + 100 WHERE sku = 'popular'")
    transport = InMemoryTransport()
    worker = Worker(WorkerSettings(wait_time_seconds=0, concurrency=8), store=store,
                    transport=transport)
    worker.add_consumer(HotRow(), queue="hot")
    worker.add_consumer(Recorder(), queue="other")
    try:
        async with running(worker):
            await transport.send_batch("hot", [
                TransportMessage(_body(Touch(n=n)).encode(), str(n), "t") for n in range(8)])
            await until(lambda: asyncio.sleep(0, worker.held > 0), 30, "a message waited")
            await transport.send_batch("other", [
                TransportMessage(_body(Work(n=n)).encode(), str(n), "w") for n in range(5)])
            # the other queue goes on while the hot row is held
            await until(lambda: _at_least(store, 5), 30, "the other queue served")
            await until(lambda: _hot_count(store, 8), 90,
                        "the hot row updated once the stuck transaction was ended")
        assert worker.failed == 0
        assert await store.list_errors() == []
    finally:
        with contextlib.suppress(Exception):
            await stuck.close(timeout=2)
        await store.close()


async def _hot_count(store: SagaStore, wanted: int) -> bool:
    async with store.transaction(readonly=True) as tx:
        return bool(await tx.scalar(select(hot.c.count)) == wanted)


async def test_the_worker_refuses_queues_that_would_dead_letter_before_it(
        aws: AwsScope, sqlite_store: SqlStore) -> None:
    queue = aws.create_queue("tight", max_receive_count=5)
    settings = WorkerSettings(aws_endpoint_url=aws.emulator.endpoint_url,
                              aws_region=aws.emulator.region)
    transport = await SqsTransport.connect(settings.sqs())
    worker = Worker(settings, store=sqlite_store, transport=transport)
    worker.add_consumer(Recorder(), queue=queue.name)
    try:
        with pytest.raises(WorkerConfigurationError,
                           match=rf"'{queue.name}' has maxReceiveCount 5, but the worker "
                                 r"needs at least 10 \(max_deliveries 5 \+ "
                                 r"dead_letter_margin 5\)"):
            await worker.run(install_signal_handlers=False)
    finally:
        await transport.close()


async def test_driver_errors_are_told_apart(tmp_path: Path) -> None:
    # what the drivers raise, for real
    refused = await _raised(asyncpg.connect("postgresql://postgres@127.0.0.1:1/x", timeout=2))
    assert looks_like_network_failure(refused)
    assert classify_failure(asyncpg.exceptions.DiskFullError("no space")) is FailureKind.OUTAGE
    assert classify_failure(asyncpg.exceptions.CannotConnectNowError("starting")) \
        is FailureKind.OUTAGE
    assert classify_failure(asyncpg.exceptions.SerializationError("x")) is FailureKind.CONFLICT
    assert classify_failure(asyncpg.exceptions.LockNotAvailableError("x")) \
        is FailureKind.CONFLICT
    assert classify_failure(asyncpg.exceptions.UniqueViolationError("x")) is FailureKind.HANDLER
    assert classify_failure(ValueError("bad amount")) is FailureKind.HANDLER
    # SQLite's full disk, wrapped by SQLAlchemy as it reaches a handler
    import sqlite3

    full = sqlite3.OperationalError("database or disk is full")
    wrapped = OperationalError("INSERT ...", {}, full)
    assert classify_failure(wrapped) is FailureKind.OUTAGE
    busy = OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))
    assert classify_failure(busy) is FailureKind.CONFLICT
    # AWS
    from botocore.exceptions import ClientError, EndpointConnectionError

    assert classify_failure(EndpointConnectionError(endpoint_url="http://x")) \
        is FailureKind.OUTAGE
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}},
                            "PutEvents")
    assert classify_failure(throttled) is FailureKind.OUTAGE
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "SendMessage")
    assert classify_failure(denied) is FailureKind.HANDLER


async def _raised(awaitable: Awaitable[Any]) -> BaseException:
    try:
        await awaitable
    except BaseException as exc:
        return exc
    raise AssertionError("it did not fail")


class _Ahead(datetime):
    """A host clock 15 s ahead of the database's."""

    @classmethod
    def now(cls, tz: Any = None) -> _Ahead:  # type: ignore[override]
        real = datetime.now(tz)
        return cls.fromtimestamp((real + timedelta(seconds=15)).timestamp(), tz)


async def test_due_times_come_from_the_databases_clock_not_the_hosts(
        make_pg_asyncpg_store: Callable[..., AsyncpgStore],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker whose host clock runs 15 s ahead would fire timers 15 s early and end
    other workers' leases too soon; on the database's clock it does neither."""
    from core_saga import Outbox, SystemClock
    from core_saga._clock import DatabaseClock
    from core_saga.extension import OutboxDispatcher, TransportSink

    store = make_pg_asyncpg_store()
    await store.create_schema()
    try:
        writer = DatabaseClock(store)
        await writer.sync()
        async with Outbox(store, clock=writer).transaction() as tx:
            tx.send("later", Touch(n=1), delay=timedelta(seconds=10))
        monkeypatch.setattr("core_saga._clock.datetime", _Ahead)
        skewed = DatabaseClock(store)
        await skewed.sync()
        assert skewed.offset is not None and skewed.offset < timedelta(seconds=-14)
        transport = InMemoryTransport()
        on_database_time = OutboxDispatcher(store, {"send": TransportSink(transport)}, skewed)
        assert await on_database_time.run_due() == 0  # not due for ten more seconds
        on_host_time = OutboxDispatcher(store, {"send": TransportSink(transport)},
                                        SystemClock())
        assert await on_host_time.run_due() == 1  # what the host's clock would have done
    finally:
        await store.drop_schema()
        await store.close()


class _SlowPartner(Consumer[Touch]):
    """Reads, calls a slow partner (held until the test lets it go), then writes."""

    def __init__(self) -> None:
        self.calling = asyncio.Event()
        self.answer = asyncio.Event()

    async def consume(self, ctx: ConsumeContext[Touch]) -> None:
        await ctx.transaction.execute(select(done.c.n).where(done.c.n == ctx.message.n))
        self.calling.set()
        await self.answer.wait()  # the carrier takes its time
        await ctx.transaction.execute(insert(done).values(n=ctx.message.n, payload="slow"))


async def test_on_sqlite_a_slow_outside_call_does_not_lock_the_database(
        sqlite_store: SqlStore) -> None:
    """The write lock is taken at the first write, not when the message starts: a handler
    waiting on a partner between its reads and its writes blocks nobody."""
    await sqlite_store.create_tables(tables)
    slow = _SlowPartner()
    transport = InMemoryTransport()
    worker = Worker(WorkerSettings(wait_time_seconds=0), store=sqlite_store,
                    transport=transport)
    worker.add_consumer(slow, queue="slow")
    worker.add_consumer(Recorder(), queue="work")
    async with running(worker):
        await transport.send_batch("slow", [
            TransportMessage(_body(Touch(n=1000)).encode(), "s", "t")])
        await asyncio.wait_for(slow.calling.wait(), timeout=30)
        await transport.send_batch("work", [
            TransportMessage(_body(Work(n=n)).encode(), str(n), "w") for n in range(5)])
        await until(lambda: _at_least(sqlite_store, 5), 30,
                    "the other messages committed while the slow call was waiting")
        slow.answer.set()
        await until(lambda: _at_least(sqlite_store, 6), 30, "the slow one committed too")
    assert worker.failed == 0
