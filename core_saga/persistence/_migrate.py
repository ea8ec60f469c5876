"""Run the packaged Alembic migrations against a database URL."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str, *, schema: str | None = None) -> Config:
    """An Alembic Config for the packaged migrations (for ``command.*`` calls)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["schema"] = schema
    return config


def upgrade_sync(url: str, *, schema: str | None = None, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision` (from a plain thread)."""
    command.upgrade(alembic_config(url, schema=schema), revision)


def downgrade_sync(url: str, *, schema: str | None = None, revision: str = "base") -> None:
    """Migrate the database at `url` down to `revision`."""
    command.downgrade(alembic_config(url, schema=schema), revision)


async def upgrade(url: str, *, schema: str | None = None, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision` (from async code)."""
    await asyncio.to_thread(upgrade_sync, url, schema=schema, revision=revision)
