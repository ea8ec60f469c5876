"""Saga persistence: the store contract, SQLAlchemy (SQLite, PostgreSQL) and in-memory."""

from ._asyncpg import AsyncpgStore
from ._factory import store_from_url
from ._memory import MemoryStore
from ._migrate import (
    alembic_config,
    downgrade_sync,
    migration_locations,
    upgrade,
    upgrade_sync,
)
from ._schema import UTCDateTime
from ._sql import SqlStore
from ._store import (
    ErrorRecord,
    HistoryRecord,
    InstanceRecord,
    OutboxRow,
    SagaStore,
    StoreTransaction,
)

__all__ = [
    "AsyncpgStore",
    "ErrorRecord",
    "HistoryRecord",
    "InstanceRecord",
    "MemoryStore",
    "OutboxRow",
    "SagaStore",
    "SqlStore",
    "StoreTransaction",
    "UTCDateTime",
    "alembic_config",
    "downgrade_sync",
    "migration_locations",
    "store_from_url",
    "upgrade",
    "upgrade_sync",
]
