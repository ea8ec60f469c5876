"""The packaged Alembic migrations build exactly the schema the store uses."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from bridge.audit import audit_log
from bridge.console._auth import console_sessions
from bridge.reviews import review_tasks
from core_saga.persistence import downgrade_sync, upgrade
from core_saga.persistence._schema import metadata

from ..conftest import PG_URL, requires_postgres

# Everything stepsaga stores: the engine's tables, the console's review tasks, the audit
# log and the console's sessions.
PACKAGE_METADATA = MetaData()
for _table in (*metadata.tables.values(), review_tasks, audit_log, console_sessions):
    _table.to_metadata(PACKAGE_METADATA)


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
    assert tables == ["alembic_version", "audit_log", "console_sessions", "inbox",
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
