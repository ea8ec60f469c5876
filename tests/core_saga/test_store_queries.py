"""The operator's reads of the store contract (what the console and the timeline ask),
on every backend: filtering, sorting and paging happen in the database, so a stuck
order is found however many finished ones there are."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core_saga.extension import Outgoing
from core_saga.persistence import (
    AsyncpgStore,
    ErrorRecord,
    HistoryRecord,
    InboxRecord,
    InstanceQuery,
    InstanceRecord,
    SagaStore,
    SqlStore,
    StateCount,
    store_from_url,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ORDERS = "Orders"
RETURNS = "Returns"
FINAL = {ORDERS: {"Completed", "Canceled"}, RETURNS: {"Refunded"}}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def instance(saga_type: str, cid: str, state: str, created: float, updated: float
             ) -> InstanceRecord:
    return InstanceRecord(saga_type, cid, state, 1, {"n": cid}, at(created), at(updated))


async def insert(store: SagaStore, *records: InstanceRecord) -> None:
    async with store.transaction() as tx:
        for record in records:
            await tx.insert(record)


def ids(page: list[InstanceRecord]) -> list[str]:
    return [r.correlation_id for r in page]


async def test_a_stuck_order_is_found_among_three_hundred_finished_ones(store: SagaStore
                                                                        ) -> None:
    finished = [instance(ORDERS, f"done-{n:03d}", "Completed" if n % 2 else "Canceled",
                         n, n + 1) for n in range(300)]
    await insert(store, *finished)
    await insert(store, instance(ORDERS, "stuck-1", "AwaitingReview", 400, 401),
                 instance(ORDERS, "fresh-1", "PaymentPending", 500, 590),
                 instance(ORDERS, "final-1", "Final", 1, 2))
    query = InstanceQuery(final_states=FINAL, stuck=True, stuck_before=at(580), limit=10)
    page = await store.query_instances(query)
    assert ids(page.instances) == ["stuck-1"] and page.total == 1
    running = await store.query_instances(InstanceQuery(final_states=FINAL, final=False))
    assert ids(running.instances) == ["stuck-1", "fresh-1"]  # the longest idle first
    done = await store.query_instances(InstanceQuery(final_states=FINAL, final=True, limit=5))
    assert done.total == 301 and ids(done.instances)[0] == "done-000"
    not_stuck = await store.query_instances(InstanceQuery(
        final_states=FINAL, stuck=False, stuck_before=at(580), limit=1000))
    assert not_stuck.total == 302 and "stuck-1" not in ids(not_stuck.instances)


async def test_filters_sorts_and_pages(store: SagaStore) -> None:
    await insert(store,
                 instance(ORDERS, "o-1", "PaymentPending", 0, 30),
                 instance(ORDERS, "o-2", "PaymentPending", 10, 20),
                 instance(ORDERS, "O-3_x", "Completed", 20, 25),
                 instance(ORDERS, "o-4%", "ShippingPending", 30, 40),
                 instance(RETURNS, "o-1", "Refunded", 5, 50),
                 instance(RETURNS, "r-9", "Open", 6, 6))

    async def query(**kw: object) -> list[str]:
        page = await store.query_instances(InstanceQuery(**kw))  # type: ignore[arg-type]
        assert page.total >= len(page.instances)
        return [f"{r.saga_type}/{r.correlation_id}" for r in page.instances]

    assert await query(saga_type=RETURNS) == ["Returns/r-9", "Returns/o-1"]
    assert await query(states=frozenset({"PaymentPending"})) == ["Orders/o-2", "Orders/o-1"]
    assert await query(final_states=FINAL, final=True) == ["Orders/O-3_x", "Returns/o-1"]
    # A state is final only for the saga type that declares it.
    assert await query(final_states={RETURNS: {"PaymentPending"}}, final=True,
                       saga_type=ORDERS) == []
    assert await query(updated_before=at(25)) == ["Returns/r-9", "Orders/o-2"]
    assert await query(created_after=at(10), created_before=at(30)) == [
        "Orders/o-2", "Orders/O-3_x"]
    # Search: case-insensitive, and % and _ are literal characters.
    assert await query(id_contains="o-3") == ["Orders/O-3_x"]
    assert await query(id_contains="_") == ["Orders/O-3_x"]
    assert await query(id_contains="%") == ["Orders/o-4%"]
    assert await query(id_contains="O-1", order="id") == ["Orders/o-1", "Returns/o-1"]
    assert await query(order="recent", limit=2) == ["Returns/o-1", "Orders/o-4%"]
    assert await query(order="newest", limit=2) == ["Orders/o-4%", "Orders/O-3_x"]
    assert await query(order="oldest", limit=2) == ["Orders/o-1", "Returns/o-1"]
    assert await query(order="id") == ["Orders/O-3_x", "Orders/o-1", "Orders/o-2",
                                       "Orders/o-4%", "Returns/o-1", "Returns/r-9"]
    pages = [await query(order="idle", limit=4, offset=0),
             await query(order="idle", limit=4, offset=4)]
    assert len(pages[0]) == 4 and len(pages[1]) == 2
    assert sorted(pages[0] + pages[1]) == sorted(await query(limit=100))
    total = (await store.query_instances(InstanceQuery(limit=1))).total
    assert total == 6


def test_a_bad_query_is_refused_early() -> None:
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"order": "random"},
                {"stuck": True}, {"id_contains": ""}):
        with pytest.raises(ValueError):
            InstanceQuery(**bad)  # type: ignore[arg-type]


async def test_what_the_timeline_reads_of_one_correlation_id(store: SagaStore) -> None:
    await insert(store, instance(ORDERS, "o-1", "PaymentPending", 0, 1),
                 instance(RETURNS, "o-1", "Open", 0, 2), instance(ORDERS, "o-2", "X", 0, 1))
    async with store.transaction() as tx:
        await tx.add_history([
            HistoryRecord(ORDERS, "o-1", "Submitted", "Initial", "PaymentPending", "m-1",
                          "urn:a", at(1)),
            HistoryRecord(RETURNS, "o-1", "Opened", "Initial", "Open", "m-2", "urn:b", at(2),
                          detail={"why": "test"}),
            HistoryRecord(ORDERS, "o-2", "Submitted", "Initial", "X", "m-3", "urn:a", at(3)),
        ])
        await tx.add_outbox([Outgoing(kind="send", destination="q", body=b"{}",
                                      message_id="m-9", message_type="urn:c",
                                      correlation_id="o-1")], at(1), None)
        assert await tx.inbox_claim("payment", "m-9", at(4))
        assert await tx.inbox_claim("audit", "m-9", at(3))
        assert await tx.inbox_claim("payment", "m-other", at(3))
    await store.add_error(ErrorRecord("payment", "ValueError", "bad", "{}", at(5),
                                      message_id="m-9", correlation_id="o-1",
                                      headers={"traceparent": "x"}))
    await store.add_error(ErrorRecord("payment", "ValueError", "other", "{}", at(6),
                                      correlation_id="o-2"))

    assert [(r.saga_type, r.state) for r in await store.instances_of("o-1")] == [
        (ORDERS, "PaymentPending"), (RETURNS, "Open")]
    assert await store.instances_of("nobody") == []
    both = await store.history_of("o-1")
    assert [h.event for h in both] == ["Submitted", "Opened"]
    assert both[1].detail == {"why": "test"}
    assert [h.event for h in await store.history_of("o-1", saga_type=RETURNS)] == ["Opened"]
    [error] = await store.errors_for("o-1")
    assert (error.reason, error.headers) == ("bad", {"traceparent": "x"})
    assert [r.message_id for r in await store.outbox_for("o-1")] == ["m-9"]
    assert await store.inbox_for(["m-9", "m-none"]) == [
        InboxRecord("audit", "m-9", at(3)), InboxRecord("payment", "m-9", at(4))]
    assert await store.inbox_for([]) == []
    assert await store.state_counts() == [StateCount(ORDERS, "PaymentPending", 1),
                                          StateCount(ORDERS, "X", 1),
                                          StateCount(RETURNS, "Open", 1)]
    assert await store.state_counts(RETURNS) == [StateCount(RETURNS, "Open", 1)]
    # History outlives the instance.
    async with store.transaction() as tx:
        await tx.delete(ORDERS, "o-1", 1)
    assert [h.event for h in await store.history_of("o-1", saga_type=ORDERS)] == ["Submitted"]
    assert await store.missing_tables() == []


async def test_a_database_without_the_tables_says_which_are_missing(
        sql_store: SqlStore | AsyncpgStore) -> None:
    assert await sql_store.missing_tables() == []
    await sql_store.drop_schema()
    missing = await sql_store.missing_tables()
    assert {"saga_instances", "outbox", "inbox", "message_errors"} <= set(missing)
    await sql_store.create_schema()


def test_a_mistyped_sqlite_path_is_not_created(tmp_path: Path) -> None:
    wrong = tmp_path / f"typo-{uuid.uuid4().hex[:6]}.db"
    with pytest.raises(FileNotFoundError, match="no SQLite database at"):
        store_from_url(f"sqlite+aiosqlite:///{wrong}", must_exist=True)
    assert not wrong.exists()


async def test_sqlite_reads_go_on_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    """The gauges, the console and the worker's checks read beside a writer: on SQLite
    (WAL) a read takes no write lock, so it neither waits for one nor, cancelled half-way,
    keeps writers waiting."""
    path = tmp_path / "busy.db"
    store = SqlStore.from_url(f"sqlite+aiosqlite:///{path}", lock_timeout=1.0)
    await store.create_schema()
    await insert(store, instance(ORDERS, "o-1", "Submitted", 0, 0))
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another process's write transaction
        writer.execute("UPDATE saga_instances SET state = 'Paid'")
        assert await store.count_instances(ORDERS) == {"Submitted": 1}
        assert (await store.outbox_stats(at(0)))["backlog"] == 0
        assert ids((await store.query_instances(InstanceQuery(saga_type=ORDERS))).instances) \
            == ["o-1"]
        assert [c.state for c in await store.state_counts()] == ["Submitted"]
        assert await store.missing_tables() == []
        with pytest.raises(Exception, match="database is locked"):  # a write does wait
            await store.purge(inbox_before=at(0), outbox_before=at(0))
        writer.execute("COMMIT")
        assert await store.count_instances(ORDERS) == {"Paid": 1}
    finally:
        writer.close()
        await store.close()
