"""The SQLAlchemy store: SQLite (aiosqlite, WAL) embedded, PostgreSQL (asyncpg) in production."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Integer,
    MetaData,
    String,
    Text,
    and_,
    bindparam,
    delete,
    event,
    func,
    insert,
    inspect,
    not_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.base import Executable

from .._context import Outgoing
from .._errors import ConcurrencyError
from .._transaction import Parameters, Result, check_statement
from ._asyncpg import postgres_timeouts
from ._factory import redact_url
from ._schema import (
    UTCDateTime,
    delivery_failures,
    errors,
    inbox,
    metadata,
    outbox,
    saga_history,
    saga_index,
    saga_instances,
)
from ._store import (
    FINAL_STATE,
    ErrorRecord,
    HistoryRecord,
    InboxRecord,
    InstancePage,
    InstanceQuery,
    InstanceRecord,
    OutboxRow,
    SagaStore,
    StateCount,
    StoreTransaction,
    like_pattern,
)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _row_to_outbox(row: Any) -> OutboxRow:
    return OutboxRow(
        id=row.id, message_id=row.message_id, kind=row.kind, destination=row.destination,
        message_type=row.message_type, correlation_id=row.correlation_id,
        body=row.body.encode(), deliver_at=row.deliver_at, attempts=row.attempts,
        created_at=row.created_at, dispatched_at=row.dispatched_at,
        last_error=row.last_error, failed=row.failed,
    )


def _row_to_history(r: Any) -> HistoryRecord:
    return HistoryRecord(r.saga_type, r.correlation_id, r.event, r.from_state, r.to_state,
                         r.message_id, r.message_type, r.at,
                         None if r.detail is None else orjson.loads(r.detail), r.id)


def _row_to_error(r: Any) -> ErrorRecord:
    return ErrorRecord(r.endpoint, r.error_type, r.reason, r.body, r.at, r.message_id,
                       r.message_type, r.correlation_id,
                       orjson.loads(r.headers) if r.headers else {}, r.id)


def _instance_filter(query: InstanceQuery) -> list[ColumnElement[bool]]:
    """The WHERE clauses of `query` (see :class:`InstanceQuery`)."""
    c = saga_instances.c
    by_type: dict[str, list[str]] = {}
    for saga_type, state in query.final_pairs():
        by_type.setdefault(saga_type, []).append(state)
    final = or_(c.state == FINAL_STATE, *(and_(c.saga_type == saga_type, c.state.in_(states))
                                          for saga_type, states in by_type.items()))
    where: list[ColumnElement[bool]] = []
    if query.saga_type is not None:
        where.append(c.saga_type == query.saga_type)
    if query.states:
        where.append(c.state.in_(sorted(query.states)))
    if query.final is not None:
        where.append(final if query.final else not_(final))
    if query.stuck is not None and query.stuck_before is not None:
        stuck = and_(not_(final), c.updated_at < query.stuck_before)
        where.append(stuck if query.stuck else not_(stuck))
    if query.updated_before is not None:
        where.append(c.updated_at < query.updated_before)
    if query.created_before is not None:
        where.append(c.created_at < query.created_before)
    if query.created_after is not None:
        where.append(c.created_at >= query.created_after)
    if query.id_contains is not None:
        where.append(func.lower(c.correlation_id).like(like_pattern(query.id_contains),
                                                       escape="\\"))
    return where


_INSTANCE_ORDER = {
    "idle": (saga_instances.c.updated_at,),
    "recent": (saga_instances.c.updated_at.desc(),),
    "newest": (saga_instances.c.created_at.desc(),),
    "oldest": (saga_instances.c.created_at,),
    "id": (),
}


def _row_to_instance(row: Any) -> InstanceRecord:
    return InstanceRecord(row.saga_type, row.correlation_id, row.state, row.version,
                          orjson.loads(row.data), row.created_at, row.updated_at)


# The per-message statements, built once. Each is executed with a parameter dict, so
# SQLAlchemy finds its compiled form in the cache without rebuilding the construct or
# its cache key. (Dialect inserts with ON CONFLICT are not cacheable in SQLAlchemy 2.0,
# so those two are text, which SQLite and PostgreSQL both accept.)
_INBOX_CLAIM = text(
    "INSERT INTO inbox (consumer, message_id, processed_at) "
    "VALUES (:consumer, :message_id, :processed_at) ON CONFLICT DO NOTHING"
).bindparams(bindparam("consumer", type_=String()), bindparam("message_id", type_=String()),
             bindparam("processed_at", type_=UTCDateTime()))
_INBOX_SEEN = select(inbox.c.message_id).where(
    inbox.c.consumer == bindparam("consumer"), inbox.c.message_id == bindparam("message_id"))
_INSERT = text(
    "INSERT INTO saga_instances "
    "(saga_type, correlation_id, state, version, data, created_at, updated_at) "
    "VALUES (:saga_type, :correlation_id, :state, :version, :data, :created_at, :updated_at) "
    "ON CONFLICT DO NOTHING"
).bindparams(bindparam("saga_type", type_=String()), bindparam("correlation_id", type_=String()),
             bindparam("state", type_=String()), bindparam("version", type_=Integer()),
             bindparam("data", type_=Text()), bindparam("created_at", type_=UTCDateTime()),
             bindparam("updated_at", type_=UTCDateTime()))
_LOAD = select(saga_instances).where(
    saga_instances.c.saga_type == bindparam("saga_type"),
    saga_instances.c.correlation_id == bindparam("correlation_id"),
)
_LOAD_LOCKED = _LOAD.with_for_update()
_FIND = select(saga_index.c.correlation_id).where(
    saga_index.c.saga_type == bindparam("saga_type"), saga_index.c.name == bindparam("name"),
    saga_index.c.value == bindparam("value"),
)
# SET takes the column-named keys of the parameters; the WHERE binds are named apart.
_UPDATE = update(saga_instances).where(
    saga_instances.c.saga_type == bindparam("w_saga_type"),
    saga_instances.c.correlation_id == bindparam("w_correlation_id"),
    saga_instances.c.version == bindparam("w_version"),
)
_DELETE = delete(saga_instances).where(
    saga_instances.c.saga_type == bindparam("saga_type"),
    saga_instances.c.correlation_id == bindparam("correlation_id"),
    saga_instances.c.version == bindparam("version"),
)
_DELETE_INDEX = delete(saga_index).where(
    saga_index.c.saga_type == bindparam("saga_type"),
    saga_index.c.correlation_id == bindparam("correlation_id"),
)
_INSERT_INDEX = insert(saga_index)
_ADD_HISTORY = insert(saga_history)
_ADD_OUTBOX = insert(outbox).returning(outbox.c.id, sort_by_parameter_order=True)
_CANCEL_TIMERS = delete(outbox).where(
    outbox.c.schedule_token.in_(bindparam("tokens", expanding=True)),
    outbox.c.dispatched_at.is_(None),
)
_ADD_ERROR = insert(errors)


class SqlTransaction(StoreTransaction):
    """A StoreTransaction on one SQLAlchemy connection.

    On SQLite a message's transaction takes the database's write lock as late as it
    can: its reads run before any lock (each sees what is committed, as PostgreSQL's
    READ COMMITTED would), and ``BEGIN IMMEDIATE`` comes just before its first write —
    the handler's own or the engine's at the end. A handler that reads, calls a gateway
    and then writes holds no lock during the call; every other message goes on. What
    was read before the lock is checked when writing: the instance by its version, the
    inbox entry by its key (a duplicate handled meanwhile makes this one a conflict,
    run again from the start).
    """

    def __init__(self, conn: AsyncConnection, dialect: str, *, lazy: bool = False) -> None:
        self.conn = conn
        """The SQLAlchemy connection (the engine's; user code goes through
        :meth:`execute`, which is the same on every store)."""
        self._dialect = dialect
        self._lazy = lazy
        self._writing = not lazy
        self._inbox: list[dict[str, Any]] = []

    @property
    def dialect(self) -> str:
        return self._dialect

    async def _write(self) -> None:
        """Take the write lock before the first write (SQLite message transactions)."""
        if self._writing:
            return
        self._writing = True
        await self.conn.exec_driver_sql("BEGIN IMMEDIATE")
        claims, self._inbox = self._inbox, []
        for claim in claims:
            result = await self.conn.execute(_INBOX_CLAIM, claim)
            if not result.rowcount:
                raise ConcurrencyError(f"{claim['message_id']} was claimed by "
                                       f"{claim['consumer']} meanwhile")

    async def finish(self) -> None:
        """Write what is still held back (the inbox entry of a message that wrote
        nothing else) before COMMIT."""
        if self._inbox:
            await self._write()

    async def execute(self, statement: Executable, parameters: Parameters = None) -> Result:
        statement = check_statement(statement)
        if not getattr(statement, "is_select", False):
            await self._write()
        result = await self.conn.execute(statement, parameters)
        return Result(result.all() if result.returns_rows else [], result.rowcount)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        await self._write()
        async with self.conn.begin_nested():
            yield

    async def limit_lock_wait(self, seconds: float) -> None:
        if self._dialect == "postgresql":
            await self.conn.exec_driver_sql(
                f"SET LOCAL lock_timeout = {max(1, int(seconds * 1000))}")

    async def inbox_claim(self, consumer: str, message_id: str, now: datetime) -> bool:
        claim = {"consumer": consumer, "message_id": message_id, "processed_at": now}
        if not self._writing:
            if any(c["consumer"] == consumer and c["message_id"] == message_id
                   for c in self._inbox):
                return False
            seen = (await self.conn.execute(_INBOX_SEEN, claim)).first()
            if seen is not None:
                return False
            self._inbox.append(claim)  # inserted with the first write, checked then
            return True
        result = await self.conn.execute(_INBOX_CLAIM, claim)
        return bool(result.rowcount)

    async def claim_once(self, scope: str, key: str) -> bool:
        # A claim is for doing something once (a redrive's send, a refund): it must hold
        # from here, not be checked at the commit. On PostgreSQL a second claim of the key
        # waits for the first to commit; on SQLite the claim takes the write lock now.
        await self._write()
        return await super().claim_once(scope, key)

    async def load(self, saga_type: str, correlation_id: str, *, lock: bool
                   ) -> InstanceRecord | None:
        if lock:
            await self._write()  # pessimistic on SQLite: hold the database from here
        stmt = _LOAD_LOCKED if lock and self._dialect == "postgresql" else _LOAD
        row = (await self.conn.execute(
            stmt, {"saga_type": saga_type, "correlation_id": correlation_id})).first()
        return None if row is None else _row_to_instance(row)

    async def find(self, saga_type: str, name: str, value: str) -> list[str]:
        result = await self.conn.execute(
            _FIND, {"saga_type": saga_type, "name": name, "value": value})
        return [r[0] for r in result]

    async def insert(self, record: InstanceRecord) -> None:
        await self._write()
        # ON CONFLICT DO NOTHING and the row count rather than an IntegrityError: the
        # transaction stays usable without a savepoint.
        result = await self.conn.execute(_INSERT, {
            "saga_type": record.saga_type, "correlation_id": record.correlation_id,
            "state": record.state, "version": record.version, "data": _dumps(record.data),
            "created_at": record.created_at, "updated_at": record.updated_at,
        })
        if result.rowcount != 1:
            raise ConcurrencyError(
                f"{record.saga_type} {record.correlation_id} was created concurrently")

    async def update(self, record: InstanceRecord, expected_version: int) -> None:
        await self._write()
        result = await self.conn.execute(_UPDATE, {
            "w_saga_type": record.saga_type, "w_correlation_id": record.correlation_id,
            "w_version": expected_version, "state": record.state, "version": record.version,
            "data": _dumps(record.data), "updated_at": record.updated_at,
        })
        if result.rowcount != 1:
            raise ConcurrencyError(
                f"{record.saga_type} {record.correlation_id} changed since version "
                f"{expected_version}"
            )

    async def delete(self, saga_type: str, correlation_id: str, expected_version: int) -> None:
        await self._write()
        key = {"saga_type": saga_type, "correlation_id": correlation_id}
        result = await self.conn.execute(_DELETE, {**key, "version": expected_version})
        if result.rowcount != 1:
            raise ConcurrencyError(f"{saga_type} {correlation_id} changed before removal")
        await self.conn.execute(_DELETE_INDEX, key)

    async def set_index(self, saga_type: str, correlation_id: str,
                        values: dict[str, str]) -> None:
        await self._write()
        await self.conn.execute(_DELETE_INDEX,
                                {"saga_type": saga_type, "correlation_id": correlation_id})
        if values:
            await self.conn.execute(_INSERT_INDEX, [
                {"saga_type": saga_type, "name": k, "value": v, "correlation_id": correlation_id}
                for k, v in values.items()
            ])

    async def add_history(self, records: Sequence[HistoryRecord]) -> None:
        if not records:
            return
        await self._write()
        await self.conn.execute(_ADD_HISTORY, [
            {"saga_type": r.saga_type, "correlation_id": r.correlation_id, "event": r.event,
             "from_state": r.from_state, "to_state": r.to_state, "message_id": r.message_id,
             "message_type": r.message_type, "at": r.at,
             "detail": None if r.detail is None else _dumps(r.detail)}
            for r in records
        ])

    async def add_outbox(self, items: Sequence[Outgoing], now: datetime,
                         lease_until: datetime | None) -> list[OutboxRow]:
        if not items:
            return []
        await self._write()
        params: list[dict[str, Any]] = []
        deliver_times: list[datetime] = []
        for o in items:
            deliver_at = o.deliver_at or now
            deliver_times.append(deliver_at)
            params.append({
                "message_id": o.message_id, "kind": o.kind, "destination": o.destination,
                "message_type": o.message_type, "correlation_id": o.correlation_id,
                "body": o.body.decode(), "created_at": now, "deliver_at": deliver_at,
                "locked_until": lease_until if deliver_at <= now else None,
                "schedule_token": o.schedule_token,
            })
        result = await self.conn.execute(_ADD_OUTBOX, params)
        ids = [r[0] for r in result]
        return [
            OutboxRow(id=i, message_id=o.message_id, kind=o.kind, destination=o.destination,
                      message_type=o.message_type, correlation_id=o.correlation_id,
                      body=o.body, deliver_at=at, created_at=now)
            for i, o, at in zip(ids, items, deliver_times, strict=True)
        ]

    async def cancel_timers(self, tokens: Sequence[str]) -> None:
        if not tokens:
            return
        await self._write()
        await self.conn.execute(_CANCEL_TIMERS, {"tokens": list(tokens)})

    async def add_error(self, record: ErrorRecord) -> None:
        await self._write()
        await self.conn.execute(_ADD_ERROR, {
            "endpoint": record.endpoint, "message_id": record.message_id,
            "message_type": record.message_type, "correlation_id": record.correlation_id,
            "error_type": record.error_type, "reason": record.reason, "body": record.body,
            "headers": _dumps(record.headers), "at": record.at,
        })


class SqlStore(SagaStore):
    """A SagaStore on SQLAlchemy 2 (async). Build it with :meth:`from_url`."""

    def __init__(self, engine: AsyncEngine, *, schema: str | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.schema = schema

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 20, schema: str | None = None,
                 echo: bool = False, lock_timeout: float | None = None,
                 statement_timeout: float | None = 60.0,
                 idle_in_transaction_timeout: float | None = 60.0) -> SqlStore:
        """A store for `url`: ``sqlite+aiosqlite:///path.db`` or
        ``postgresql+asyncpg://user@host/db``. SQLite gets WAL, a busy timeout
        (`lock_timeout`, default 30 s) and ``BEGIN IMMEDIATE`` so that writers queue
        instead of failing. On PostgreSQL, `schema` puts the tables in their own schema
        (via the search path), and the timeouts are those of
        :meth:`AsyncpgStore.from_url` (`lock_timeout` default 10 s)."""
        if url.startswith("sqlite"):
            if schema is not None:
                raise ValueError("schema= is for PostgreSQL; SQLite keeps one file per store")
            # A small pool: aiosqlite runs a thread per connection, costly to open, and
            # BEGIN IMMEDIATE serialises writers anyway.
            engine = create_async_engine(url, echo=echo, pool_size=4, max_overflow=4,
                                         hide_parameters=True)
            _configure_sqlite(engine, busy_timeout=30.0 if lock_timeout is None
                              else lock_timeout)
        elif url.startswith("postgresql"):
            connect_args: dict[str, Any] = {}
            settings = postgres_timeouts(10.0 if lock_timeout is None else lock_timeout,
                                         statement_timeout, idle_in_transaction_timeout)
            if schema is not None:
                if not schema.replace("_", "").isalnum():
                    raise ValueError(f"schema name {schema!r} must be letters, digits and _")
                settings["search_path"] = schema
            if settings:
                connect_args["server_settings"] = settings
            engine = create_async_engine(url, echo=echo, pool_size=pool_size,
                                         max_overflow=pool_size, pool_pre_ping=True,
                                         connect_args=connect_args, hide_parameters=True)
        else:
            raise ValueError(f"unsupported database URL {redact_url(url)!r}: use "
                             "sqlite+aiosqlite:// or postgresql+asyncpg://")
        return cls(engine, schema=schema)

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for the store's own reads (gauges, console, checks). On SQLite its
        transaction is a deferred BEGIN: a read takes no write lock, so it neither waits
        behind writers nor — cancelled half-way, its connection not yet given back —
        keeps them waiting."""
        async with self.engine.connect() as plain:
            yield await plain.execution_options(**{_READ_ONLY: True})

    @asynccontextmanager
    async def transaction(self, *, readonly: bool = False
                          ) -> AsyncIterator[SqlTransaction]:
        if not readonly and self.dialect == "sqlite":
            async with self.engine.connect() as plain:
                conn = await plain.execution_options(**{_LAZY: True})
                async with conn.begin():
                    tx = SqlTransaction(conn, self.dialect, lazy=True)
                    yield tx
                    await tx.finish()
            return
        if not readonly:
            async with self.engine.begin() as conn:
                yield SqlTransaction(conn, self.dialect)
            return
        async with self.engine.connect() as plain:
            conn = await plain.execution_options(
                **{_READ_ONLY: True},
                **({"postgresql_readonly": True} if self.dialect == "postgresql" else {}))
            async with conn.begin():
                yield SqlTransaction(conn, self.dialect)

    async def create_schema(self) -> None:
        async with self.engine.begin() as conn:
            if self.schema is not None:
                await conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.run_sync(metadata.create_all)

    async def create_tables(self, metadata: MetaData) -> None:
        async with self.engine.begin() as conn:
            if self.schema is not None:
                await conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.run_sync(metadata.create_all)

    async def outbox_stats(self, now: datetime) -> dict[str, float]:
        due = (outbox.c.dispatched_at.is_(None), outbox.c.failed.is_(False),
               outbox.c.deliver_at <= now)
        stmt = select(func.count(), func.min(outbox.c.deliver_at),
                      func.count(outbox.c.schedule_token)).where(*due)
        async with self._read() as conn:
            count, oldest, timers = (await conn.execute(stmt)).one()
        if isinstance(oldest, str):  # SQLite hands an aggregate back untyped
            oldest = datetime.fromisoformat(oldest)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
        return {"backlog": float(count), "oldest_age": age, "timers_due": float(timers)}

    async def database_time(self) -> datetime | None:
        if self.dialect != "postgresql":
            return None  # SQLite is a file on this host: the host's clock is the clock
        async with self._read() as conn:
            value = (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()
        assert isinstance(value, datetime)
        return value

    async def drop_schema(self) -> None:
        """Drop every table, and the schema if the store has one (tests)."""
        async with self.engine.begin() as conn:
            if self.schema is not None:
                await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            else:
                await conn.run_sync(metadata.drop_all)

    async def close(self) -> None:
        await self.engine.dispose()

    async def claim_due(self, now: datetime, lease_until: datetime, limit: int
                        ) -> list[OutboxRow]:
        due = (
            select(outbox.c.id)
            .where(outbox.c.dispatched_at.is_(None), outbox.c.failed.is_(False),
                   outbox.c.deliver_at <= now,
                   (outbox.c.locked_until.is_(None)) | (outbox.c.locked_until < now))
            .order_by(outbox.c.id)
            .limit(limit)
        )
        if self.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(outbox).where(outbox.c.id.in_(due.scalar_subquery()))
                .values(locked_until=lease_until).returning(*outbox.c)
            )
            rows = [_row_to_outbox(r) for r in result]
        rows.sort(key=lambda r: r.id)
        return rows

    async def mark_dispatched(self, ids: Sequence[int], now: datetime) -> None:
        if not ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(update(outbox).where(outbox.c.id.in_(list(ids)))
                               .values(dispatched_at=now, locked_until=None))

    async def mark_attempt_failed(self, row_id: int, error: str, retry_at: datetime | None,
                                  now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(outbox).where(outbox.c.id == row_id).values(
                    attempts=outbox.c.attempts + 1, last_error=error[:4000],
                    locked_until=retry_at, failed=retry_at is None,
                )
            )

    async def get_instance(self, saga_type: str, correlation_id: str) -> InstanceRecord | None:
        async with self._read() as conn:
            return await SqlTransaction(conn, self.dialect).load(saga_type, correlation_id,
                                                                  lock=False)

    async def list_instances(self, saga_type: str, *, state: str | None = None,
                             updated_before: datetime | None = None,
                             limit: int = 100, offset: int = 0) -> list[InstanceRecord]:
        stmt = select(saga_instances).where(saga_instances.c.saga_type == saga_type)
        if state is not None:
            stmt = stmt.where(saga_instances.c.state == state)
        if updated_before is not None:
            stmt = stmt.where(saga_instances.c.updated_at < updated_before)
        stmt = stmt.order_by(saga_instances.c.updated_at.desc(),
                             saga_instances.c.correlation_id).limit(limit).offset(offset)
        async with self._read() as conn:
            return [_row_to_instance(r) for r in await conn.execute(stmt)]

    async def count_instances(self, saga_type: str) -> dict[str, int]:
        stmt = (select(saga_instances.c.state, func.count())
                .where(saga_instances.c.saga_type == saga_type)
                .group_by(saga_instances.c.state))
        async with self._read() as conn:
            return {r[0]: int(r[1]) for r in await conn.execute(stmt)}

    async def history(self, saga_type: str, correlation_id: str) -> list[HistoryRecord]:
        stmt = select(saga_history).where(
            saga_history.c.saga_type == saga_type,
            saga_history.c.correlation_id == correlation_id,
        ).order_by(saga_history.c.id)
        async with self._read() as conn:
            return [
                HistoryRecord(r.saga_type, r.correlation_id, r.event, r.from_state, r.to_state,
                              r.message_id, r.message_type, r.at,
                              None if r.detail is None else orjson.loads(r.detail), r.id)
                for r in await conn.execute(stmt)
            ]

    async def outbox_for(self, correlation_id: str) -> list[OutboxRow]:
        stmt = select(outbox).where(outbox.c.correlation_id == correlation_id) \
            .order_by(outbox.c.id)
        async with self._read() as conn:
            return [_row_to_outbox(r) for r in await conn.execute(stmt)]

    async def pending_outbox(self) -> list[OutboxRow]:
        stmt = select(outbox).where(outbox.c.dispatched_at.is_(None)).order_by(outbox.c.id)
        async with self._read() as conn:
            return [_row_to_outbox(r) for r in await conn.execute(stmt)]

    async def list_errors(self, *, endpoint: str | None = None,
                          limit: int = 100) -> list[ErrorRecord]:
        stmt = select(errors).order_by(errors.c.id.desc()).limit(limit)
        if endpoint is not None:
            stmt = stmt.where(errors.c.endpoint == endpoint)
        async with self._read() as conn:
            return [
                ErrorRecord(r.endpoint, r.error_type, r.reason, r.body, r.at, r.message_id,
                            r.message_type, r.correlation_id,
                            orjson.loads(r.headers) if r.headers else {}, r.id)
                for r in await conn.execute(stmt)
            ]

    async def purge(self, *, inbox_before: datetime, outbox_before: datetime
                    ) -> tuple[int, int]:
        async with self.engine.begin() as conn:
            a = await conn.execute(delete(inbox).where(inbox.c.processed_at < inbox_before))
            b = await conn.execute(delete(outbox).where(
                outbox.c.dispatched_at.is_not(None), outbox.c.dispatched_at < outbox_before))
            await conn.execute(delete(delivery_failures).where(
                delivery_failures.c.last_at < inbox_before))
            return int(a.rowcount or 0), int(b.rowcount or 0)

    # -- the operator's reads (console, timeline) ------------------------------------
    async def query_instances(self, query: InstanceQuery) -> InstancePage:
        where = _instance_filter(query)
        page = (select(saga_instances).where(*where)
                .order_by(*_INSTANCE_ORDER[query.order], saga_instances.c.saga_type,
                          saga_instances.c.correlation_id)
                .limit(query.limit).offset(query.offset))
        count = select(func.count()).select_from(saga_instances).where(*where)
        async with self._read() as conn:
            found = [_row_to_instance(r) for r in await conn.execute(page)]
            total = int((await conn.execute(count)).scalar_one())
        return InstancePage(found, total)

    async def instances_of(self, correlation_id: str) -> list[InstanceRecord]:
        stmt = (select(saga_instances)
                .where(saga_instances.c.correlation_id == correlation_id)
                .order_by(saga_instances.c.saga_type))
        async with self._read() as conn:
            return [_row_to_instance(r) for r in await conn.execute(stmt)]

    async def history_of(self, correlation_id: str, *, saga_type: str | None = None
                         ) -> list[HistoryRecord]:
        stmt = select(saga_history).where(saga_history.c.correlation_id == correlation_id)
        if saga_type is not None:
            stmt = stmt.where(saga_history.c.saga_type == saga_type)
        async with self._read() as conn:
            return [_row_to_history(r)
                    for r in await conn.execute(stmt.order_by(saga_history.c.id))]

    async def errors_for(self, correlation_id: str) -> list[ErrorRecord]:
        stmt = select(errors).where(errors.c.correlation_id == correlation_id) \
            .order_by(errors.c.id)
        async with self._read() as conn:
            return [_row_to_error(r) for r in await conn.execute(stmt)]

    async def inbox_for(self, message_ids: Collection[str]) -> list[InboxRecord]:
        ids = sorted(set(message_ids))
        found: list[InboxRecord] = []
        async with self._read() as conn:
            for start in range(0, len(ids), 500):  # SQLite caps the parameters
                stmt = select(inbox).where(inbox.c.message_id.in_(ids[start:start + 500]))
                found += [InboxRecord(r.consumer, r.message_id, r.processed_at)
                          for r in await conn.execute(stmt)]
        found.sort(key=lambda r: (r.message_id, r.processed_at, r.consumer))
        return found

    async def state_counts(self, saga_type: str | None = None) -> list[StateCount]:
        c = saga_instances.c
        stmt = select(c.saga_type, c.state, func.count()).group_by(c.saga_type, c.state) \
            .order_by(c.saga_type, c.state)
        if saga_type is not None:
            stmt = stmt.where(c.saga_type == saga_type)
        async with self._read() as conn:
            return [StateCount(r[0], r[1], int(r[2])) for r in await conn.execute(stmt)]

    async def missing_tables(self) -> list[str]:
        def missing(sync_conn: Any) -> list[str]:
            inspector = inspect(sync_conn)
            return [table.name for table in metadata.sorted_tables
                    if not inspector.has_table(table.name, schema=self.schema)]

        async with self._read() as conn:
            return await conn.run_sync(missing)


_READ_ONLY = "stepsaga_read_only"
"""Execution option of a read-only transaction (a deferred BEGIN on SQLite)."""
_LAZY = "stepsaga_lazy_begin"
"""Execution option of a message's transaction on SQLite: no BEGIN until it writes."""


def _configure_sqlite(engine: AsyncEngine, *, busy_timeout: float) -> None:
    busy_ms = int(busy_timeout * 1000)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, open transactions, so BEGIN IMMEDIATE sticks.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The busy timeout first: switching to WAL takes a lock that another process
        # opening the same file at the same moment may hold (two workers starting).
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A writer takes the lock at BEGIN (and waits for it there, up to the busy
        # timeout) rather than failing when it first writes; a reader takes none.
        options = conn.get_execution_options()
        if options.get(_LAZY, False):
            return  # SqlTransaction says BEGIN IMMEDIATE before its first write
        conn.exec_driver_sql("BEGIN" if options.get(_READ_ONLY, False) else "BEGIN IMMEDIATE")
