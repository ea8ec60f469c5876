"""Shared fixtures: stores on every backend, the PostgreSQL probe, the AWS emulator."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from core_saga.persistence import AsyncpgStore, MemoryStore, SagaStore, SqlStore

pytest_plugins = ["core_saga.emulator.pytest_plugin"]

PG_URL = os.environ.get("STEPSAGA_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _postgres_answers() -> str | None:
    """None when the test server answers, else why not."""
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(PG_URL.replace("+asyncpg", ""), timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"no PostgreSQL server answers at {PG_URL}: {exc}"
    return None


_PG_PROBLEM = _postgres_answers()
requires_postgres = pytest.mark.skipif(_PG_PROBLEM is not None, reason=_PG_PROBLEM or "")


def pg_store(pool_size: int = 20) -> SqlStore:
    """A store in a fresh schema of the test database."""
    return SqlStore.from_url(PG_URL, schema=f"t_{uuid.uuid4().hex[:12]}", pool_size=pool_size)


def pg_asyncpg_store(pool_size: int = 20) -> AsyncpgStore:
    """A raw-asyncpg store in a fresh schema of the test database."""
    return AsyncpgStore.from_url(PG_URL, schema=f"t_{uuid.uuid4().hex[:12]}",
                                 pool_size=pool_size)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=[
    pytest.mark.postgres, requires_postgres]), pytest.param("postgres-asyncpg", marks=[
    pytest.mark.postgres, requires_postgres])])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SagaStore]:
    """A fresh store on each backend."""
    made: SagaStore
    if request.param == "memory":
        made = MemoryStore()
    elif request.param == "sqlite":
        made = SqlStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'saga.db'}")
    elif request.param == "postgres-asyncpg":
        made = pg_asyncpg_store()
    else:
        made = pg_store()
    await made.create_schema()
    yield made
    if isinstance(made, SqlStore | AsyncpgStore):
        await made.drop_schema()
    await made.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[
    pytest.mark.postgres, requires_postgres]), pytest.param("postgres-asyncpg", marks=[
    pytest.mark.postgres, requires_postgres])])
async def sql_store(request: pytest.FixtureRequest, tmp_path: Path
                    ) -> AsyncIterator[SqlStore | AsyncpgStore]:
    """A fresh SQL store: SQLite file and PostgreSQL (SQLAlchemy and raw asyncpg)."""
    made: SqlStore | AsyncpgStore
    if request.param == "postgres-asyncpg":
        made = pg_asyncpg_store()
    else:
        made = (SqlStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'saga.db'}")
                if request.param == "sqlite" else pg_store())
    await made.create_schema()
    yield made
    await made.drop_schema()
    await made.close()


@pytest.fixture
def make_pg_store() -> Callable[..., SqlStore]:
    if _PG_PROBLEM is not None:
        pytest.skip(_PG_PROBLEM)
    return pg_store


@pytest.fixture
def make_pg_asyncpg_store() -> Callable[..., AsyncpgStore]:
    if _PG_PROBLEM is not None:
        pytest.skip(_PG_PROBLEM)
    return pg_asyncpg_store


@pytest.fixture(params=["sqlite", pytest.param("postgres-asyncpg", marks=[
    pytest.mark.postgres, requires_postgres])])
async def prod_store(request: pytest.FixtureRequest, tmp_path: Path
                     ) -> AsyncIterator[SqlStore | AsyncpgStore]:
    """The two stores deployments use: the embedded SQLite default and PostgreSQL on
    raw asyncpg (for slow end-to-end tests, where every backend would cost minutes)."""
    made: SqlStore | AsyncpgStore = (
        pg_asyncpg_store() if request.param == "postgres-asyncpg"
        else SqlStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'saga.db'}"))
    await made.create_schema()
    yield made
    await made.drop_schema()
    await made.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    """The embedded default store only (SQLite file, WAL)."""
    made = SqlStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'saga.db'}")
    await made.create_schema()
    yield made
    await made.drop_schema()
    await made.close()


@pytest.fixture(scope="session")
def plain_moto() -> Iterator[str]:
    """A bare moto server (no stepsaga extensions, Step Functions execution off): what a
    hand-started ``moto_server`` is. Its endpoint URL."""
    from tests.support.emulators import plain_moto_server

    with plain_moto_server() as url:
        yield url
