"""What the services share to keep their own tables in the engine's transaction.

A consumer writes its rows through ``ctx.transaction`` so they commit together with the
inbox entry and the outbox. What that transaction holds depends on the store:

- :class:`core_saga.persistence.SqlStore`: ``tx.conn`` is a SQLAlchemy ``AsyncConnection``
  (SQLite, PostgreSQL) — the main implementation of every repository;
- :class:`core_saga.persistence.AsyncpgStore`: ``tx.conn`` is an asyncpg connection — a
  second implementation, plain SQL on the same tables;
- :class:`core_saga.persistence.MemoryStore` (unit tests): no connection at all; the
  services keep their rows in :class:`MemoryTable` objects attached to the store's
  tables and register undo steps with the transaction, so a rolled-back message
  leaves nothing behind.

:func:`backend_of` tells them apart; each service's ``repository_for(tx)`` picks its
implementation with it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from sqlalchemy import Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeDecorator, TypeEngine

from core_saga.persistence import AsyncpgStore, MemoryStore, SagaStore, SqlStore

Backend = Literal["sqlalchemy", "asyncpg", "memory"]

K = TypeVar("K")
V = TypeVar("V")


def backend_of(tx: object) -> Backend:
    """Which kind of store transaction `tx` is; TypeError naming it when unknown."""
    conn = getattr(tx, "conn", None)
    if isinstance(conn, AsyncConnection):
        return "sqlalchemy"
    if isinstance(conn, asyncpg.Connection | PoolConnectionProxy):
        return "asyncpg"
    if conn is None and isinstance(getattr(tx, "undo", None), list) and hasattr(tx, "t"):
        return "memory"
    raise TypeError(f"the Order-to-Cash services cannot store their rows in a "
                    f"{type(tx).__module__}.{type(tx).__name__} (connection: "
                    f"{type(conn).__name__}); use SqlStore, AsyncpgStore or MemoryStore")


def as_utc(value: datetime) -> datetime:
    """`value` with its time zone; SQLite hands back naive datetimes, which are UTC here."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class ExactDecimal(TypeDecorator[Decimal]):
    """A money amount stored exactly, scale included (12.50 stays 12.50): unconstrained
    NUMERIC on PostgreSQL, text elsewhere (SQLite would round through float)."""

    impl = String(40)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(String(40))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return Decimal(value) if dialect.name == "postgresql" else str(Decimal(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(str(value))


# -- the in-memory backend ------------------------------------------------------------------

class DuplicateKeyError(KeyError):
    """An in-memory insert hit a taken key: the memory backend's unique violation."""


def is_duplicate_key(exc: BaseException) -> bool:
    """Whether `exc` is a unique-constraint violation on any backend."""
    from sqlalchemy.exc import IntegrityError

    return isinstance(exc, IntegrityError | DuplicateKeyError | asyncpg.UniqueViolationError)


class MemoryTable(Generic[K, V]):
    """A keyed table of immutable rows whose writes can be undone. Pass the
    transaction's undo list to every write."""

    def __init__(self) -> None:
        self._rows: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self._rows.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def values(self) -> Iterator[V]:
        return iter(list(self._rows.values()))

    def put(self, key: K, row: V, undo: list[Callable[[], None]]) -> None:
        """Insert or replace the row at `key`."""
        rows = self._rows
        if key in rows:
            old = rows[key]
            undo.append(lambda: rows.__setitem__(key, old))
        else:
            def forget() -> None:
                rows.pop(key, None)
            undo.append(forget)
        rows[key] = row

    def insert(self, key: K, row: V, undo: list[Callable[[], None]]) -> None:
        """Insert a new row; DuplicateKeyError when `key` is taken (a unique constraint)."""
        if key in self._rows:
            raise DuplicateKeyError(f"duplicate key {key!r}")
        self.put(key, row, undo)


_SPACES: weakref.WeakKeyDictionary[object, dict[str, Any]] = weakref.WeakKeyDictionary()


def memory_space(owner: object) -> dict[str, Any]:
    """The services' in-memory tables for one MemoryStore, by name."""
    return _SPACES.setdefault(owner, {})


def memory_tables(tx: Any, name: str, factory: Callable[[], V]
                  ) -> tuple[V, list[Callable[[], None]]]:
    """The in-memory tables `name` of the store `tx` belongs to (made by `factory` on
    first use) and the transaction's undo list.

    This reads two attributes of ``MemoryTransaction`` that are not part of the store
    contract — ``t`` (the store's tables, one object per store) and ``undo`` — because
    the contract gives a consumer no place for its own data on MemoryStore.
    """
    space = memory_space(tx.t)
    if name not in space:
        space[name] = factory()
    found: V = space[name]
    return found, tx.undo


async def create_sql_tables(store: SagaStore, metadata: Any) -> None:
    """Create the tables of `metadata` in `store` if missing (a no-op on MemoryStore,
    whose service tables appear on first use). Production runs migrations instead.

    On an AsyncpgStore the DDL goes through a short-lived SQLAlchemy engine on the same
    database and schema, as ``AsyncpgStore.create_schema`` does for the engine's tables.
    """
    if isinstance(store, SqlStore):
        async with store.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    elif isinstance(store, AsyncpgStore):
        ddl = SqlStore.from_url("postgresql+asyncpg://" + store.dsn.partition("://")[2],
                                schema=store.schema, pool_size=1)
        try:
            await create_sql_tables(ddl, metadata)
        finally:
            await ddl.close()
    elif not isinstance(store, MemoryStore):
        raise TypeError(f"create_tables: unsupported store {type(store).__name__}")
