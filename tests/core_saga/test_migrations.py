"""The packaged Alembic migrations build exactly the schema the store uses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from bridge.audit import audit_log
from bridge.console._auth import console_sessions
from bridge.reviews import review_tasks
from core_saga.persistence import downgrade_sync, migration_locations, upgrade
from core_saga.persistence._schema import metadata

from ..conftest import PG_URL, requires_postgres

# Everything stepsaga stores: the engine's tables (core_saga's branch) and the console's
# review tasks, audit log and sessions (the bridge's branch).
PACKAGE_METADATA = MetaData()
for _table in (*metadata.tables.values(), review_tasks, audit_log, console_sessions):
    _table.to_metadata(PACKAGE_METADATA)
CORE_TABLES = ["alembic_version", "delivery_failures", "inbox", "message_errors", "outbox",
               "saga_history", "saga_index", "saga_instances"]


async def _diff(url: str, schema: str | None) -> tuple[list[object], list[str]]:
    args = {"server_settings": {"search_path": schema}} if schema else {}
    engine = create_async_engine(url, connect_args=args)

    def compare(conn):  # type: ignore[no-untyped-def]
        ctx = MigrationContext.configure(conn)
        return compare_metadata(ctx, PACKAGE_METADATA), sorted(inspect(conn).get_table_names())

    async with engine.connect() as conn:
        result = await conn.run_sync(compare)
    await engine.dispose()
    return result


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=[
    pytest.mark.postgres, requires_postgres])])
async def test_migrations_match_the_models_and_downgrade_cleanly(
        backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        url, schema = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}", None
    else:
        url, schema = PG_URL, f"m_{uuid.uuid4().hex[:10]}"
    await upgrade(url, schema=schema)
    diff, tables = await _diff(url, schema)
    assert diff == []
    assert tables == ["alembic_version", "audit_log", "console_sessions", "delivery_failures",
                      "inbox",
                      "message_errors", "outbox", "review_tasks", "saga_history",
                      "saga_index", "saga_instances"]
    await asyncio.to_thread(downgrade_sync, url, schema=schema)
    _, tables = await _diff(url, schema)
    assert tables == ["alembic_version"]
    if schema:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[
    pytest.mark.postgres, requires_postgres])])
async def database(request: pytest.FixtureRequest, tmp_path: Path
                   ) -> AsyncIterator[tuple[str, str | None]]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'm.db'}", None
        return
    schema = f"m_{uuid.uuid4().hex[:10]}"
    yield PG_URL, schema
    engine = create_async_engine(PG_URL)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    await engine.dispose()


def test_each_package_owns_its_branch() -> None:
    locations = migration_locations()
    assert set(locations) == {"core_saga", "bridge"}
    assert locations["bridge"].is_relative_to(Path(__file__).parents[2] / "bridge")


async def test_core_alone_makes_only_the_engines_tables(
        database: tuple[str, str | None]) -> None:
    url, schema = database
    await upgrade(url, schema=schema, packages=["core_saga"])
    assert (await _diff(url, schema))[1] == CORE_TABLES


async def test_a_database_whose_review_table_core_once_made_upgrades_cleanly(
        database: tuple[str, str | None]) -> None:
    """Before the table moved to the bridge's branch, core's revision 0002 made it."""
    url, schema = database
    await upgrade(url, schema=schema, packages=["core_saga"])
    args = {"server_settings": {"search_path": schema}} if schema else {}
    engine = create_async_engine(url, connect_args=args)
    # the table as core's revision 0002 made it (before the deadline and the reason)
    old = MetaData()
    review_tasks.to_metadata(old)
    table = old.tables["review_tasks"]
    for name in ("deadline", "decision_reason"):
        table._columns.remove(table.c[name])
    async with engine.begin() as conn:
        await conn.run_sync(old.create_all)
    await engine.dispose()
    await upgrade(url, schema=schema)  # the bridge's branch adopts the table
    diff, tables = await _diff(url, schema)
    assert diff == [] and "review_tasks" in tables


async def test_an_unknown_package_is_named(database: tuple[str, str | None]) -> None:
    url, schema = database
    with pytest.raises(ValueError, match="no migrations registered for nope"):
        await upgrade(url, schema=schema, packages=["nope"])


async def test_the_timer_token_index_holds_timers_only(database: tuple[str, str | None]
                                                       ) -> None:
    """Migration 0004: a message that is not a timer writes no entry in the token index
    (its condition), on both databases, as the tables the stores create have it."""
    url, schema = database
    await upgrade(url, schema=schema, packages=["core_saga"])
    args = {"server_settings": {"search_path": schema}} if schema else {}
    engine = create_async_engine(url, connect_args=args)
    try:
        async with engine.connect() as conn:
            if schema:
                found = (await conn.execute(text(
                    "SELECT indexdef FROM pg_indexes WHERE schemaname = :schema "
                    "AND indexname = 'ix_outbox_token'"), {"schema": schema})).scalar_one()
            else:
                found = (await conn.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE name = 'ix_outbox_token'"
                )).scalar_one()
    finally:
        await engine.dispose()
    assert "schedule_token IS NOT NULL" in found.replace("(", "").replace(")", "")
