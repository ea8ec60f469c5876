"""Whether the database takes writes: the worker stops receiving while it does not.

A failure that may be an outage marks the store down (one log line); a probe then
commits a row now and then, backing off, until one goes through (one more line, with
how long it lasted). Meanwhile the receive loops wait, ``/ready`` says not ready, and
messages already taken are kept — not released, so that their deliveries are not spent.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

from ._failures import FailureKind, classify_failure, looks_like_network_failure
from .persistence import SagaStore

log = logging.getLogger("core_saga.worker")


class StoreHealth:
    """The worker's view of its store: up, or down since when."""

    def __init__(self, store: SagaStore, name: str, *, max_backoff: float = 30.0,
                 probe_timeout: float = 5.0) -> None:
        self.store = store
        self.name = name
        """This worker's probe row (one per process)."""
        self.max_backoff = max_backoff
        self.probe_timeout = probe_timeout
        self._up = asyncio.Event()
        self._up.set()
        self._down_since = 0.0
        self._reason = ""
        self._probing: asyncio.Task[None] | None = None
        self.outages = 0
        """How many times the store went down (a test and the metrics read it)."""

    @property
    def up(self) -> bool:
        return self._up.is_set()

    def report_outage(self, reason: str) -> None:
        """The store failed in a way only an outage explains: stop receiving, and probe
        until it takes a write again."""
        if not self._up.is_set():
            return
        self._up.clear()
        self._down_since = time.monotonic()
        self._reason = reason
        self.outages += 1
        log.warning("the database is unavailable (%s): receiving paused, messages in hand "
                    "are kept and tried again when it is back", reason)
        self._probing = asyncio.get_running_loop().create_task(self._probe_until_up())

    async def check(self) -> bool:
        """Probe once now; False (and the store marked down) when it fails."""
        try:
            await asyncio.wait_for(self.store.probe(self.name), timeout=self.probe_timeout)
        except Exception as exc:
            self.report_outage(f"{type(exc).__name__}: {exc}")
            return False
        return True

    async def is_outage(self, error: BaseException) -> bool:
        """Whether `error` is (part of) an outage of the store or of AWS. A network error
        that a handler let through (its partner's connection refused) is an outage only
        if the database does not answer either."""
        kind = classify_failure(error)
        if kind is FailureKind.OUTAGE:
            return True
        if kind is FailureKind.HANDLER and looks_like_network_failure(error):
            return not await self.check()
        return False

    async def wait_up(self, stop: asyncio.Event | None = None,
                      timeout: float | None = None) -> bool:
        """Wait until the store is up (or `stop` is set, or `timeout` passes); whether
        it is up."""
        if self._up.is_set():
            return True
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._up.wait())]
        if stop is not None:
            waiters.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return self._up.is_set()

    async def _probe_until_up(self) -> None:
        delay = 0.5
        probes = 0
        while True:
            await asyncio.sleep(random.uniform(delay / 2, delay))
            probes += 1
            try:
                await asyncio.wait_for(self.store.probe(self.name), timeout=self.probe_timeout)
            except Exception as exc:
                if probes == 1 or probes % 20 == 0:
                    log.warning("the database is still unavailable after %.0f s (%d probes): "
                                "%s: %s", time.monotonic() - self._down_since, probes,
                                type(exc).__name__, exc)
                delay = min(self.max_backoff, delay * 2)
                continue
            log.warning("the database is back after %.1f s (%d probes): receiving again",
                        time.monotonic() - self._down_since, probes)
            self._up.set()
            return

    async def close(self) -> None:
        if self._probing is not None:
            self._probing.cancel()
            await asyncio.gather(self._probing, return_exceptions=True)
