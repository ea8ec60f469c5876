"""The raw-asyncpg store: the same contract as the others (checked side by side on every
backend), on the schema the migrations build, with its own connection handed to services."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from core_saga import Envelope, Topology, VirtualClock
from core_saga._errors import ConcurrencyError
from core_saga.extension import Endpoint, Outgoing, SagaHandler
from core_saga.persistence import (
    AsyncpgStore,
    HistoryRecord,
    InstanceRecord,
    MemoryStore,
    SagaStore,
    SqlStore,
    store_from_url,
    upgrade,
)
from core_saga.persistence._schema import metadata
from examples.quickstart.article_saga import ArticleOrderSaga, OrderSubmitted

from ..conftest import PG_URL, requires_postgres

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def instance(cid: str, version: int = 1, **data: object) -> InstanceRecord:
    return InstanceRecord("S", cid, "Open", version, dict(data), T0, T0)


def outgoing(n: int, deliver_at: datetime | None = None) -> Outgoing:
    return Outgoing(kind="send", destination="q", body=f'{{"n":{n}}}'.encode(),
                    message_id=f"m-{n}", message_type="urn:t", correlation_id="c",
                    deliver_at=deliver_at)


# -- the contract, on every backend -------------------------------------------------

async def test_a_duplicate_insert_is_a_conflict_and_the_transaction_goes_on(
        store: SagaStore) -> None:
    async with store.transaction() as tx:
        await tx.insert(instance("a"))
    async with store.transaction() as tx:
        with pytest.raises(ConcurrencyError):
            await tx.insert(instance("a", total=9))
        with pytest.raises(ConcurrencyError):
            await tx.update(instance("a", version=3), expected_version=2)
        with pytest.raises(ConcurrencyError):
            await tx.delete("S", "a", expected_version=7)
        # Still usable: none of the above aborted the database transaction.
        assert await tx.inbox_claim("c", "after-conflicts", T0)
        await tx.update(instance("a", version=2, total=1), expected_version=1)
    record = await store.get_instance("S", "a")
    assert record is not None and (record.version, record.data) == (2, {"total": 1})


async def test_claim_and_load_claims_once_and_reads_the_instance(store: SagaStore) -> None:
    async with store.transaction() as tx:
        assert await tx.claim_and_load("c", "m-1", T0, "S", "x", lock=False) == (True, None)
        await tx.insert(instance("x", total=4))
    async with store.transaction() as tx:
        claimed, record = await tx.claim_and_load("c", "m-2", T0, "S", "x", lock=True)
        assert claimed and record is not None
        assert (record.state, record.version, record.data) == ("Open", 1, {"total": 4})
        # The same message again, in the same transaction or a later one: a duplicate.
        assert await tx.claim_and_load("c", "m-2", T0, "S", "x", lock=False) == (False, None)
    async with store.transaction() as tx:
        assert (await tx.claim_and_load("c", "m-1", T0, "S", "x", lock=False))[0] is False


async def test_a_saved_instance_is_written_by_commit_or_conflicts_before_it(
        store: SagaStore) -> None:
    """`save` may be held back until the next statement or COMMIT; its conflict then
    comes from there, and nothing of the transaction is kept."""
    async with store.transaction() as tx:
        await tx.save(instance("s", total=1), None)
        await tx.add_history([HistoryRecord("S", "s", "E", "Initial", "Open", "m-0", "urn:t",
                                             T0)])
        rows = await tx.add_outbox([outgoing(1)], T0, T0)
    assert [r.message_id for r in rows] == ["m-1"]
    record = await store.get_instance("S", "s")
    assert record is not None and record.data == {"total": 1}
    # A later message of the same transaction sees it (the held write goes first).
    async with store.transaction() as tx:
        await tx.save(instance("s", version=2, total=2), 1)
        claimed, seen = await tx.claim_and_load("c", "m-3", T0, "S", "s", lock=False)
        assert claimed and seen is not None and seen.version == 2
    # A stale version: ConcurrencyError by the commit at the latest, all rolled back.
    with pytest.raises(ConcurrencyError):
        async with store.transaction() as tx:
            await tx.inbox_claim("c", "m-4", T0)
            await tx.save(instance("s", version=2, total=9), 1)
            await tx.add_outbox([outgoing(2)], T0, T0)
    with pytest.raises(ConcurrencyError):
        async with store.transaction() as tx:
            await tx.save(instance("s", total=9), None)  # exists already
    async with store.transaction() as tx:
        assert await tx.inbox_claim("c", "m-4", T0)
    record = await store.get_instance("S", "s")
    assert record is not None and (record.version, record.data) == (2, {"total": 2})
    assert [r.message_id for r in await store.pending_outbox()] == ["m-1"]


async def test_load_update_delete_and_the_index(store: SagaStore) -> None:
    async with store.transaction() as tx:
        assert await tx.load("S", "b", lock=True) is None
        await tx.insert(instance("b", items=[1, 2], note="é"))
        await tx.set_index("S", "b", {"order": "o-1", "sku": "x"})
    async with store.transaction() as tx:
        loaded = await tx.load("S", "b", lock=True)
        assert loaded is not None
        assert (loaded.version, loaded.data) == (1, {"items": [1, 2], "note": "é"})
        assert loaded.created_at == T0
        assert await tx.find("S", "order", "o-1") == ["b"]
        await tx.set_index("S", "b", {"order": "o-1", "sku": "y"})
        assert await tx.find("S", "sku", "x") == []
        assert await tx.find("S", "sku", "y") == ["b"]
        assert await tx.find("S", "order", "o-1") == ["b"]
        await tx.set_index("S", "b", {})
        assert await tx.find("S", "order", "o-1") == []
        await tx.set_index("S", "b", {"order": "o-2"})
    async with store.transaction() as tx:
        await tx.delete("S", "b", expected_version=1)
        assert await tx.find("S", "order", "o-2") == []
    assert await store.get_instance("S", "b") is None


async def test_a_failed_delete_keeps_the_index(store: SagaStore) -> None:
    async with store.transaction() as tx:
        await tx.insert(instance("i"))
        await tx.set_index("S", "i", {"order": "o-9"})
    async with store.transaction() as tx:
        with pytest.raises(ConcurrencyError):
            await tx.delete("S", "i", expected_version=2)
        assert await tx.find("S", "order", "o-9") == ["i"]


async def test_outbox_rows_in_order_with_the_lease_on_those_due(store: SagaStore) -> None:
    lease = T0 + timedelta(minutes=1)
    async with store.transaction() as tx:
        rows = await tx.add_outbox([outgoing(1), outgoing(2, T0 + timedelta(hours=1)),
                                    outgoing(3)], T0, lease)
        assert await tx.add_outbox([], T0, lease) == []
    assert [r.message_id for r in rows] == ["m-1", "m-2", "m-3"]
    assert rows[0].id < rows[1].id < rows[2].id
    assert [r.deliver_at for r in rows] == [T0, T0 + timedelta(hours=1), T0]
    assert rows[0].body == b'{"n":1}' and rows[0].created_at == T0
    stored = await store.pending_outbox()
    assert [(r.id, r.message_id, r.body) for r in stored] == [
        (r.id, r.message_id, r.body) for r in rows]
    # The committing process holds the lease on the due rows; the timer is not due.
    assert await store.claim_due(T0 + timedelta(seconds=30), T0 + timedelta(minutes=5),
                                 10) == []
    later = T0 + timedelta(minutes=2)
    claimed = await store.claim_due(later, later + timedelta(minutes=1), 10)
    assert [r.message_id for r in claimed] == ["m-1", "m-3"]
    await store.mark_dispatched([claimed[0].id], later)
    await store.mark_attempt_failed(claimed[1].id, "boom", None, later)
    [failed] = [r for r in await store.pending_outbox() if r.message_id == "m-3"]
    assert (failed.attempts, failed.failed, failed.last_error) == (1, True, "boom")
    assert [r.message_id for r in await store.outbox_for("c")] == ["m-1", "m-2", "m-3"]


async def test_timers_cancel_by_token_until_dispatched(store: SagaStore) -> None:
    timer = outgoing(1, T0 + timedelta(hours=1))
    timer.schedule_token = "tok"
    async with store.transaction() as tx:
        await tx.add_outbox([timer], T0, None)
    async with store.transaction() as tx:
        await tx.cancel_timers([])
        await tx.cancel_timers(["other", "tok"])
    assert await store.pending_outbox() == []


async def test_history_kept_in_order_with_detail(store: SagaStore) -> None:
    records = [HistoryRecord("S", "h", "E1", "Initial", "A", "m1", "urn:x", T0),
               HistoryRecord("S", "h", "E2", "A", "B", "m2", "urn:x", T0,
                             {"transitions": [["A", "X"], ["X", "B"]]})]
    async with store.transaction() as tx:
        await tx.add_history(records[:1])
        await tx.add_history([])
    async with store.transaction() as tx:  # history with no outbox after it
        await tx.add_history(records[1:])
    async with store.transaction() as tx:  # history, then the outbox (one statement)
        await tx.add_history([HistoryRecord("S", "h", "E3", "B", "C", "m3", "urn:x", T0)])
        await tx.add_outbox([outgoing(1)], T0, None)
    got = await store.history("S", "h")
    assert [(h.event, h.to_state, h.detail) for h in got] == [
        ("E1", "A", None), ("E2", "B", {"transitions": [["A", "X"], ["X", "B"]]}),
        ("E3", "C", None)]
    assert all(h.id is not None for h in got)


async def test_history_rolls_back_with_its_transaction(store: SagaStore) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.add_history([HistoryRecord("S", "r", "E", "A", "B", "m", "urn:x", T0)])
            raise RuntimeError("handler failed")
    assert await store.history("S", "r") == []


async def test_listing_counting_and_purging(store: SagaStore) -> None:
    async with store.transaction() as tx:
        for n, state in enumerate(["Open", "Open", "Done"]):
            at = T0 + timedelta(minutes=n)
            await tx.insert(InstanceRecord("L", f"l{n}", state, 1, {}, at, at))
        assert await tx.inbox_claim("c", "old", T0)
        assert not await tx.inbox_claim("c", "old", T0)
    assert await store.count_instances("L") == {"Open": 2, "Done": 1}
    assert [r.correlation_id for r in await store.list_instances("L")] == ["l2", "l1", "l0"]
    assert [r.correlation_id for r in await store.list_instances("L", state="Open")] == [
        "l1", "l0"]
    assert [r.correlation_id for r in await store.list_instances(
        "L", updated_before=T0 + timedelta(minutes=1))] == ["l0"]
    assert [r.correlation_id for r in await store.list_instances(
        "L", state="Open", limit=1, offset=1)] == ["l0"]
    assert [r.correlation_id async for r in store.stream_instances("L", batch=2)] == [
        "l2", "l1", "l0"]
    assert await store.purge(inbox_before=T0 + timedelta(days=1),
                             outbox_before=T0 + timedelta(days=1)) == (1, 0)


# -- SQL stores: time zones --------------------------------------------------------

async def test_datetimes_come_back_aware_utc(sql_store: SqlStore | AsyncpgStore) -> None:
    naive = datetime(2030, 5, 1, 12, 0)  # taken as UTC, as everywhere in the stores
    plus2 = datetime(2030, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    async with sql_store.transaction() as tx:
        await tx.insert(InstanceRecord("Z", "z", "Open", 1, {}, naive, plus2))
    record = await sql_store.get_instance("Z", "z")
    assert record is not None
    assert record.created_at.tzinfo is not None and record.updated_at.tzinfo is not None
    assert record.created_at.utcoffset() == timedelta(0)
    assert record.created_at == record.updated_at == datetime(2030, 5, 1, 12, tzinfo=UTC)


# -- the asyncpg store itself --------------------------------------------------------

@pytest.fixture
async def apg(make_pg_asyncpg_store: Callable[..., AsyncpgStore]
              ) -> AsyncIterator[AsyncpgStore]:
    made = make_pg_asyncpg_store(pool_size=4)
    await made.create_schema()
    yield made
    await made.drop_schema()
    await made.close()


async def test_services_write_their_own_tables_on_tx_conn(apg: AsyncpgStore) -> None:
    async with apg.transaction() as tx:
        await tx.conn.execute("CREATE TABLE ledger (order_id text PRIMARY KEY, n int)")
    async with apg.transaction() as tx:
        await tx.conn.execute("INSERT INTO ledger VALUES ($1, $2)", "o-1", 1)
        assert await tx.inbox_claim("svc", "m-1", T0)
    with pytest.raises(RuntimeError):
        async with apg.transaction() as tx:
            assert await tx.inbox_claim("svc", "m-2", T0)
            await tx.conn.execute("INSERT INTO ledger VALUES ($1, $2)", "o-2", 2)
            async with tx.conn.transaction():  # a savepoint inside the message's transaction
                await tx.conn.execute("INSERT INTO ledger VALUES ($1, $2)", "o-3", 3)
            raise RuntimeError("handler failed")
    async with apg.transaction() as tx:
        assert [tuple(r) for r in await tx.conn.fetch("SELECT * FROM ledger")] == [("o-1", 1)]
        assert await tx.inbox_claim("svc", "m-2", T0)  # rolled back with the rest


async def test_a_database_error_rolls_back_and_the_pool_recovers(apg: AsyncpgStore) -> None:
    import asyncpg

    for _ in range(6):  # more than the pool holds: every connection went back usable
        with pytest.raises(asyncpg.PostgresError):
            async with apg.transaction() as tx:
                assert await tx.inbox_claim("c", "x", T0)
                await tx.conn.execute("SELECT 1/0")
    async with apg.transaction() as tx:
        assert await tx.inbox_claim("c", "x", T0)


async def test_a_cancelled_transaction_leaves_nothing_and_the_pool_recovers(
        apg: AsyncpgStore) -> None:
    started = asyncio.Event()

    async def slow() -> None:
        async with apg.transaction() as tx:
            assert await tx.inbox_claim("c", "cancelled", T0)
            started.set()
            await tx.conn.execute("SELECT pg_sleep(30)")

    task = asyncio.create_task(slow())
    await started.wait()
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for n in range(6):
        async with apg.transaction() as tx:
            assert await tx.inbox_claim("c", f"after-{n}", T0)
    async with apg.transaction() as tx:
        assert await tx.inbox_claim("c", "cancelled", T0)  # never committed


async def test_concurrent_claims_take_disjoint_rows(apg: AsyncpgStore) -> None:
    async with apg.transaction() as tx:
        await tx.add_outbox([outgoing(n) for n in range(40)], T0, None)
    later = T0 + timedelta(minutes=1)
    batches = await asyncio.gather(*(apg.claim_due(later, later + timedelta(minutes=1), 10)
                                     for _ in range(4)))
    ids = [r.id for batch in batches for r in batch]
    assert len(ids) == len(set(ids)) == 40
    assert all(batch == sorted(batch, key=lambda r: r.id) for batch in batches)


async def test_many_messages_at_once_share_a_small_pool(apg: AsyncpgStore) -> None:
    clock = VirtualClock()
    ep = Endpoint("article-order-saga", [SagaHandler(ArticleOrderSaga())], store=apg,
                  clock=clock, routes=Topology().routes)
    done = await asyncio.gather(*(ep.process(Envelope(OrderSubmitted(order_id=f"o-{n}",
                                                                     amount=1)))
                                  for n in range(40)))
    assert not any(p.duplicate for p in done)
    assert await apg.count_instances("ArticleOrderSaga") == {"PaymentPending": 40}
    assert len(await apg.pending_outbox()) == 40


@pytest.mark.postgres
@requires_postgres
async def test_it_runs_on_the_schema_the_migrations_build() -> None:
    schema = f"m_{uuid.uuid4().hex[:10]}"
    await upgrade(PG_URL, schema=schema)
    store = AsyncpgStore.from_url(PG_URL, schema=schema)
    try:
        ep = Endpoint("article-order-saga", [SagaHandler(ArticleOrderSaga())], store=store,
                      clock=VirtualClock(), routes=Topology().routes)
        processed = await ep.process(Envelope(OrderSubmitted(order_id="m-1", amount=2)))
        assert len(processed.rows) == 1
        record = await store.get_instance("ArticleOrderSaga", "m-1")
        assert record is not None and record.state == "PaymentPending"
        assert [h.to_state for h in await store.history("ArticleOrderSaga", "m-1")] == [
            "PaymentPending"]
    finally:
        await store.close()
        engine = create_async_engine(PG_URL)
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        await engine.dispose()


@pytest.mark.postgres
@requires_postgres
async def test_its_create_schema_builds_the_models_schema_and_sqlstore_shares_it() -> None:
    schema = f"c_{uuid.uuid4().hex[:10]}"
    fast = AsyncpgStore.from_url(PG_URL, schema=schema)
    await fast.create_schema()
    await fast.create_schema()  # idempotent
    engine = create_async_engine(PG_URL, connect_args={"server_settings": {
        "search_path": schema}})

    def compare(conn):  # type: ignore[no-untyped-def]
        return compare_metadata(MigrationContext.configure(conn), metadata)

    async with engine.connect() as conn:
        assert await conn.run_sync(compare) == []
    await engine.dispose()
    slow = SqlStore.from_url(PG_URL, schema=schema)
    try:
        async with slow.transaction() as tx:
            await tx.insert(instance("shared", n=1))
            await tx.add_history([HistoryRecord("S", "shared", "E", "A", "B", "m", "u", T0)])
        async with fast.transaction() as tx:
            loaded = await tx.load("S", "shared", lock=True)
            assert loaded is not None and loaded.data == {"n": 1}
            await tx.update(instance("shared", version=2, n=2), expected_version=1)
        record = await slow.get_instance("S", "shared")
        assert record is not None and (record.version, record.data) == (2, {"n": 2})
        assert await fast.history("S", "shared") == await slow.history("S", "shared")
    finally:
        await slow.close()
        await fast.drop_schema()
        await fast.close()


# -- the factory ---------------------------------------------------------------------

async def test_store_from_url_picks_the_store_by_scheme(tmp_path: Path) -> None:
    for url in ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"):
        made = store_from_url(url, schema="s1", pool_size=3)
        assert isinstance(made, AsyncpgStore)
        assert (made.url, made.schema, made.pool_size) == ("postgresql://u@h/db", "s1", 3)
    sqlite = store_from_url(f"sqlite+aiosqlite:///{tmp_path / 'f.db'}")
    assert isinstance(sqlite, SqlStore)
    await sqlite.close()
    assert isinstance(store_from_url("memory://"), MemoryStore)
    with pytest.raises(ValueError, match="unsupported"):
        store_from_url("mysql://u@h/db")
    with pytest.raises(ValueError, match="schema name"):
        store_from_url("postgresql://u@h/db", schema="bad-name;")
