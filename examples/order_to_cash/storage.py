"""What the services share to keep their own tables in the engine's transaction.

Each service writes its rows through the :class:`core_saga.Transaction` it is given —
``ctx.transaction`` in a consumer, an :class:`core_saga.OutboxTransaction` in the order
service's endpoint — with SQLAlchemy Core statements on its own tables (``tables.py``).
The same statements run on every SQL store (SQLite, PostgreSQL through SQLAlchemy or raw
asyncpg) and commit with the message's inbox entry and outbox, or not at all. The column
types here make the values come back the same on each.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


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
