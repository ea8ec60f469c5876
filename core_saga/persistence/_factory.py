"""A store from a database URL, picking the implementation by scheme."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._store import SagaStore


def redact_url(url: str) -> str:
    """`url` with its password masked (``postgresql://ops:***@db/orders``), for any
    message or log line that names a database."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.rsplit("@", 1)[-1] if "@" in url else url


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite+aiosqlite:///path`` URL (None for other URLs and for an
    in-memory SQLite database)."""
    scheme, sep, rest = url.partition(":///")
    if not sep or not scheme.startswith("sqlite"):
        return None
    path = rest.split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def store_from_url(url: str, *, must_exist: bool = False, **kw: Any) -> SagaStore:
    """The store for `url`:

    - ``postgresql://…`` or ``postgresql+asyncpg://…``: :class:`AsyncpgStore`, the raw
      asyncpg fast path (the production default);
    - ``sqlite+aiosqlite:///path.db``: :class:`SqlStore` (SQLAlchemy, embedded);
    - ``memory://``: :class:`MemoryStore` (tests, demos).

    Keywords go to the store's ``from_url`` (``schema=``, ``pool_size=``, …).
    `must_exist` refuses a SQLite file that is not there (FileNotFoundError) instead of
    creating an empty one: for readers such as the console, where a mistyped path is a
    mistake, not a new database.
    """
    kw = {key: value for key, value in kw.items() if value is not None}  # None: the default
    path = sqlite_path(url)
    if must_exist and path is not None and not path.is_file():
        raise FileNotFoundError(f"no SQLite database at {path} (check the database URL; "
                                "a worker creates it, or run `stepsaga migrate`)")
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
    raise ValueError(f"unsupported store URL {redact_url(url)!r}: use postgresql://, "
                     "sqlite+aiosqlite:// or memory://")
