"""A store from a database URL, picking the implementation by scheme."""

from __future__ import annotations

from typing import Any

from ._store import SagaStore


def store_from_url(url: str, **kw: Any) -> SagaStore:
    """The store for `url`:

    - ``postgresql://…`` or ``postgresql+asyncpg://…``: :class:`AsyncpgStore`, the raw
      asyncpg fast path (the production default);
    - ``sqlite+aiosqlite:///path.db``: :class:`SqlStore` (SQLAlchemy, embedded);
    - ``memory://``: :class:`MemoryStore` (tests, demos).

    Keywords go to the store's ``from_url`` (``schema=``, ``pool_size=``, …).
    """
    scheme = url.partition("://")[0].lower()
    if scheme in ("postgresql", "postgresql+asyncpg", "postgres"):
        from ._asyncpg import AsyncpgStore

        return AsyncpgStore.from_url(url, **kw)
    if scheme == "sqlite+aiosqlite":
        from ._sql import SqlStore

        return SqlStore.from_url(url, **kw)
    if scheme == "memory":
        if kw:
            raise TypeError(f"memory:// takes no options, got {sorted(kw)}")
        from ._memory import MemoryStore

        return MemoryStore()
    raise ValueError(f"unsupported store URL {url!r}: use postgresql://, "
                     "sqlite+aiosqlite:// or memory://")
