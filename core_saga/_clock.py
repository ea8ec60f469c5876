"""Time sources: the system clock, and a virtual clock tests move by hand."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where the engine reads the time and sleeps."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class VirtualClock:
    """A clock that moves only when told to; `sleep` advances it instead of waiting."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2030, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by `delta`."""
        if delta < timedelta(0):
            raise ValueError(f"a clock cannot go back: {delta}")
        self._now += delta

    async def sleep(self, seconds: float) -> None:
        self.advance(timedelta(seconds=seconds))
        await asyncio.sleep(0)


class DatabaseClock:
    """The database server's time, so that every worker agrees on when a timer is due and
    when a lease ends, whatever its own host's clock says.

    :meth:`sync` reads the server's clock (PostgreSQL ``clock_timestamp()``), halving
    the round trip; between syncs the time moves on the monotonic clock, so a step of
    the host's wall clock changes nothing. A store without a clock of its own (SQLite,
    a file on this host) leaves it on the host's time. The worker syncs at start and
    every `refresh_seconds`.
    """

    def __init__(self, source: _TimeSource, *, refresh_seconds: float = 60.0) -> None:
        self._source = source
        self.refresh_seconds = refresh_seconds
        self._base: datetime | None = None
        self._mono = 0.0
        self.offset: timedelta | None = None
        """How far the database's clock is from this host's (None: not read)."""

    async def sync(self) -> None:
        """Read the database's clock now (raises if the database does not answer)."""
        started = time.monotonic()
        server = await self._source.database_time()
        ended = time.monotonic()
        if server is None:
            self._base = None
            self.offset = timedelta(0)
            return
        self._mono = ended
        self._base = server + timedelta(seconds=(ended - started) / 2)
        self.offset = self._base - datetime.now(UTC)

    def now(self) -> datetime:
        if self._base is None:
            return datetime.now(UTC)
        return self._base + timedelta(seconds=time.monotonic() - self._mono)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _TimeSource(Protocol):
    async def database_time(self) -> datetime | None: ...
