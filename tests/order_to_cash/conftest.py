"""The app's services keep their rows in their own SQL tables, so its tests run on the
SQL stores — a SQLite file, and PostgreSQL through SQLAlchemy and through raw asyncpg —
never on MemoryStore (which runs no SQL)."""

from __future__ import annotations

import pytest

from core_saga.persistence import AsyncpgStore, SagaStore, SqlStore


@pytest.fixture
def store(sql_store: SqlStore | AsyncpgStore) -> SagaStore:
    """A fresh SQL store on each backend (``sql_store``), for tests written against
    any :class:`~core_saga.persistence.SagaStore`."""
    return sql_store
