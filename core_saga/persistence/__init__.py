"""Saga persistence: the store contract, SQLAlchemy (SQLite, PostgreSQL) and in-memory."""

from ._memory import MemoryStore
from ._migrate import alembic_config, downgrade_sync, upgrade, upgrade_sync
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
    "ErrorRecord",
    "HistoryRecord",
    "InstanceRecord",
    "MemoryStore",
    "OutboxRow",
    "SagaStore",
    "SqlStore",
    "StoreTransaction",
    "alembic_config",
    "downgrade_sync",
    "upgrade",
    "upgrade_sync",
]
