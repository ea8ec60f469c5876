"""Alembic environment: runs the migrations on the async engine the store uses."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from core_saga.persistence._schema import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
schema = config.attributes.get("schema")


def _run(connection: Any) -> None:
    if schema:
        connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        connection.exec_driver_sql(f'SET search_path TO "{schema}"')
        connection.dialect.default_schema_name = schema
    context.configure(connection=connection, target_metadata=metadata,
                      version_table_schema=schema, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    assert url is not None
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_main())
