"""Saga persistence: the store contract, SQLAlchemy (SQLite, PostgreSQL) and in-memory."""

from ._asyncpg import AsyncpgStore
from ._factory import redact_url, sqlite_path, store_from_url
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
    INSTANCE_ORDERS,
    ErrorRecord,
    HistoryRecord,
    InboxRecord,
    InstanceOrder,
    InstancePage,
    InstanceQuery,
    InstanceRecord,
    OutboxRow,
    SagaStore,
    StateCount,
    StoreTransaction,
)

__all__ = [
    "INSTANCE_ORDERS",
    "AsyncpgStore",
    "ErrorRecord",
    "HistoryRecord",
    "InboxRecord",
    "InstanceOrder",
    "InstancePage",
    "InstanceQuery",
    "InstanceRecord",
    "MemoryStore",
    "OutboxRow",
    "SagaStore",
    "SqlStore",
    "StateCount",
    "StoreTransaction",
    "UTCDateTime",
    "alembic_config",
    "downgrade_sync",
    "migration_locations",
    "redact_url",
    "sqlite_path",
    "store_from_url",
    "upgrade",
    "upgrade_sync",
]
