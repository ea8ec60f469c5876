"""`ctx.transaction`: a service's own tables, written once, on every SQL store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import IntegrityError

from core_saga import (
    BehaviorContext,
    ConsumeContext,
    Consumer,
    Event,
    Message,
    Saga,
    SagaState,
    State,
    StatementError,
)
from core_saga.persistence import AsyncpgStore, MemoryStore, SqlStore
from core_saga.persistence._schema import UTCDateTime
from core_saga.testing import SagaTestHarness

ledger_metadata = MetaData()
ledger = Table(
    "user_ledger", ledger_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", String(50), nullable=False, unique=True),
    Column("amount", Numeric(12, 2), nullable=False),
    Column("note", JSON, nullable=True),
    Column("at", UTCDateTime, nullable=True),
)


class Charge(Message):
    order_id: str
    amount: Decimal
    fail: bool = False


class LedgerConsumer(Consumer[Charge]):
    """What a user writes: a row in its own table, then maybe a failure."""

    async def consume(self, ctx: ConsumeContext[Charge]) -> None:
        await ctx.transaction.execute(insert(ledger).values(
            order_id=ctx.message.order_id, amount=ctx.message.amount,
            note={"by": "consumer"}, at=ctx.now))
        if ctx.message.fail:
            raise RuntimeError("the gateway said no")


async def _rows(store: Any) -> list[Any]:
    async with store.transaction() as tx:
        return (await tx.execute(select(ledger).order_by(ledger.c.order_id))).all()


@pytest.fixture
async def user_store(sql_store: SqlStore | AsyncpgStore) -> SqlStore | AsyncpgStore:
    await sql_store.create_tables(ledger_metadata)
    return sql_store


async def test_a_consumer_writes_its_row_in_the_message_transaction(
        user_store: SqlStore | AsyncpgStore) -> None:
    async with SagaTestHarness(store=user_store) as h:
        h.add_consumer(LedgerConsumer(), queue="payment")
        await h.send("payment", Charge(order_id="o-1", amount=Decimal("12.50")))
        await h.send("payment", Charge(order_id="o-2", amount=Decimal("3.00"), fail=True))
    rows = await _rows(user_store)
    assert [(r.order_id, Decimal(r.amount)) for r in rows] == [("o-1", Decimal("12.50"))]
    assert rows[0].note == {"by": "consumer"}
    assert rows[0].at is not None and rows[0].at.tzinfo is not None
    # the failed message rolled back its row and left its fault
    assert [reason for _, reason in h.faults] == ["RuntimeError: the gateway said no"]


class Opened(Message):
    order_id: str
    amount: Decimal


class OrderState(SagaState):
    pass


class LedgerSaga(Saga[OrderState]):
    open = State(terminal=True)
    opened = Event(Opened, correlate_by=lambda m: m.order_id)

    def define(self) -> None:
        self.initially(
            self.when(self.opened)
            .then_async(self._write)
            .then(self._explode_on_big_amounts)
            .transition_to(self.open))

    @staticmethod
    async def _write(ctx: BehaviorContext[OrderState, Opened]) -> None:
        await ctx.transaction.execute(insert(ledger).values(
            order_id=ctx.message.order_id, amount=ctx.message.amount))

    @staticmethod
    def _explode_on_big_amounts(ctx: BehaviorContext[OrderState, Opened]) -> None:
        if ctx.message.amount > 100:
            raise ValueError("too big")


async def test_a_saga_behaviors_rows_roll_back_with_the_saga(
        user_store: SqlStore | AsyncpgStore) -> None:
    async with SagaTestHarness(store=user_store) as h:
        h.add_saga(LedgerSaga())
        await h.publish(Opened(order_id="small", amount=Decimal(5)))
        await h.publish(Opened(order_id="big", amount=Decimal(500)))
        assert await h.instance(LedgerSaga, "small") is not None
        assert await h.instance(LedgerSaga, "big") is None
    assert [r.order_id for r in await _rows(user_store)] == ["small"]


async def test_statements_read_like_sqlalchemy_on_every_store(
        user_store: SqlStore | AsyncpgStore) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with user_store.transaction() as tx:
        assert tx.dialect in ("sqlite", "postgresql")
        # executemany, then RETURNING
        await tx.execute(insert(ledger), [
            {"order_id": "a", "amount": Decimal("1.10"), "at": at},
            {"order_id": "b", "amount": Decimal("2.20"), "at": at},
        ])
        new_id = await tx.scalar(insert(ledger).values(order_id="c", amount=Decimal("3.30"))
                                 .returning(ledger.c.id))
        assert isinstance(new_id, int)
        # scalar / scalars / first / one / mappings
        assert await tx.scalar(select(func.count()).select_from(ledger)) == 3
        assert (await tx.scalars(select(ledger.c.order_id).order_by(ledger.c.order_id))
                ).all() == ["a", "b", "c"]
        first = (await tx.execute(select(ledger).where(ledger.c.order_id == "a"))).one()
        assert (first.order_id, first[1], Decimal(first._mapping["amount"])) == (
            "a", "a", Decimal("1.10"))
        assert first.at == at
        assert (await tx.execute(select(ledger).where(ledger.c.order_id == "zz"))
                ).first() is None
        # IN with a list (rendered per execution), bound parameters in text()
        found = await tx.scalars(select(ledger.c.order_id)
                                 .where(ledger.c.order_id.in_(["a", "c", "nope"]))
                                 .order_by(ledger.c.order_id))
        assert found.all() == ["a", "c"]
        assert await tx.scalar(text("SELECT order_id FROM user_ledger WHERE id = :id"),
                               {"id": new_id}) == "c"
        # rowcount of writes
        changed = await tx.execute(update(ledger).where(ledger.c.order_id.in_(["a", "b"]))
                                   .values(note={"k": 1}))
        assert changed.rowcount == 2
        gone = await tx.execute(delete(ledger).where(ledger.c.order_id == "b"))
        assert gone.rowcount == 1
        assert [m["order_id"] for m in (await tx.execute(
            select(ledger.c.order_id).order_by(ledger.c.order_id))).mappings()] == ["a", "c"]


async def test_a_unique_violation_is_sqlalchemys_integrity_error_and_a_savepoint_undoes_it(
        user_store: SqlStore | AsyncpgStore) -> None:
    async with user_store.transaction() as tx:
        await tx.execute(insert(ledger).values(order_id="dup", amount=1))
        with pytest.raises(IntegrityError):
            async with tx.savepoint():
                await tx.execute(insert(ledger).values(order_id="dup", amount=2))
        # the transaction goes on after the savepoint rolled back
        await tx.execute(insert(ledger).values(order_id="other", amount=3))
    assert [r.order_id for r in await _rows(user_store)] == ["dup", "other"]


async def test_statements_of_one_shape_compile_once_on_asyncpg(
        make_pg_asyncpg_store: Any) -> None:
    store: AsyncpgStore = make_pg_asyncpg_store()
    await store.create_schema()
    await store.create_tables(ledger_metadata)
    try:
        async with store.transaction() as tx:
            for i in range(20):
                await tx.execute(insert(ledger).values(order_id=f"o-{i}", amount=i))
                await tx.execute(select(ledger).where(ledger.c.order_id == f"o-{i}"))
        # one insert shape and one select shape, however many objects were built
        assert store.statements.compiled == 2
        async with store.transaction() as tx:
            assert await tx.scalar(select(func.count()).select_from(ledger)) == 20
    finally:
        await store.drop_schema()
        await store.close()


async def test_bad_statements_get_errors_that_say_what_to_do(
        user_store: SqlStore | AsyncpgStore) -> None:
    async with user_store.transaction() as tx:
        with pytest.raises(StatementError, match=r"wrap raw SQL in sqlalchemy\.text"):
            await tx.execute("DELETE FROM user_ledger")  # type: ignore[arg-type]
        with pytest.raises(StatementError, match="not a int"):
            await tx.execute(42)  # type: ignore[arg-type]
    if isinstance(user_store, AsyncpgStore):
        upsert = mysql.insert(ledger).values(order_id="x", amount=1) \
            .on_duplicate_key_update(amount=2)
        async with user_store.transaction() as tx:
            with pytest.raises(StatementError, match=r"cannot compile this statement for "
                               r"PostgreSQL.*INSERT INTO user_ledger"):
                await tx.execute(upsert)


async def test_memory_store_says_to_use_a_sql_store_for_user_tables() -> None:
    store = MemoryStore()
    async with store.transaction() as tx:
        with pytest.raises(StatementError, match="sqlite\\+aiosqlite"):
            await tx.execute(select(ledger))


async def test_concurrent_messages_each_write_in_their_own_transaction(
        user_store: SqlStore | AsyncpgStore) -> None:
    async def write(i: int) -> None:
        async with user_store.transaction() as tx:
            await tx.execute(insert(ledger).values(order_id=f"c-{i}", amount=i))

    await asyncio.gather(*(write(i) for i in range(10)))
    assert len(await _rows(user_store)) == 10


async def test_a_claim_holds_from_the_moment_it_is_made(
        sql_store: SqlStore | AsyncpgStore) -> None:
    """`claim_once` is for doing something once (a redrive's send, a refund): a second
    claim of the key waits for the first transaction and then says False — on SQLite too,
    where a message's own inbox claim is checked only when it first writes."""
    claimed, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with sql_store.transaction() as tx:
            assert await tx.claim_once("refunds", "order-1")
            claimed.set()
            await release.wait()  # an outside call, made once

    async def second() -> bool:
        async with sql_store.transaction() as tx:
            return await tx.claim_once("refunds", "order-1")

    holder = asyncio.create_task(first())
    await asyncio.wait_for(claimed.wait(), 10)
    other = asyncio.create_task(second())
    await asyncio.wait({other}, timeout=0.5)
    assert not other.done()  # waiting for the first claim's transaction
    release.set()
    await asyncio.wait_for(holder, 10)
    assert await asyncio.wait_for(other, 30) is False
