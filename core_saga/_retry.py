"""Retry policies for the `retry` activity: immediate, interval, incremental, exponential."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how far apart to retry a block of activities.

    Build one with the class methods; `ignore` lists exception types that are never
    retried, `handle` (when not empty) the only ones that are.
    """

    limit: int
    """Retries after the first attempt. 0 means no retry."""
    delays: tuple[float, ...] = ()
    """Seconds before each retry; the last value repeats when `limit` is longer."""
    jitter: bool = False
    """Full jitter: each delay is drawn uniformly from [0, delay]."""
    ignore: tuple[type[BaseException], ...] = ()
    handle: tuple[type[BaseException], ...] = ()
    _rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.limit < 0:
            raise ValueError(f"retry limit must be >= 0, got {self.limit}")
        if any(d < 0 for d in self.delays):
            raise ValueError(f"retry delays must be >= 0, got {self.delays}")

    @classmethod
    def immediate(cls, limit: int, *, ignore: tuple[type[BaseException], ...] = (),
                  handle: tuple[type[BaseException], ...] = ()) -> RetryPolicy:
        """Retry at once, `limit` times."""
        return cls(limit, (0.0,), ignore=ignore, handle=handle)

    @classmethod
    def interval(cls, limit: int, delay: timedelta, *,
                 ignore: tuple[type[BaseException], ...] = (),
                 handle: tuple[type[BaseException], ...] = ()) -> RetryPolicy:
        """Retry `limit` times, `delay` apart."""
        return cls(limit, (delay.total_seconds(),), ignore=ignore, handle=handle)

    @classmethod
    def incremental(cls, limit: int, initial: timedelta, step: timedelta, *,
                    ignore: tuple[type[BaseException], ...] = (),
                    handle: tuple[type[BaseException], ...] = ()) -> RetryPolicy:
        """Retry `limit` times, the delay growing by `step` each time."""
        delays = tuple(initial.total_seconds() + i * step.total_seconds() for i in range(limit))
        return cls(limit, delays or (0.0,), ignore=ignore, handle=handle)

    @classmethod
    def exponential(cls, limit: int, minimum: timedelta, maximum: timedelta,
                    factor: float = 2.0, *, jitter: bool = True,
                    ignore: tuple[type[BaseException], ...] = (),
                    handle: tuple[type[BaseException], ...] = ()) -> RetryPolicy:
        """Retry `limit` times, delays growing by `factor` from `minimum` up to `maximum`,
        with full jitter by default."""
        if factor < 1:
            raise ValueError(f"backoff factor must be >= 1, got {factor}")
        lo, hi = minimum.total_seconds(), maximum.total_seconds()
        delays = tuple(min(hi, lo * factor**i) for i in range(limit))
        return cls(limit, delays or (0.0,), jitter=jitter, ignore=ignore, handle=handle)

    def should_retry(self, exc: BaseException) -> bool:
        """Whether `exc` is one this policy retries."""
        if isinstance(exc, self.ignore):
            return False
        return not self.handle or isinstance(exc, self.handle)

    def schedule(self) -> Iterator[float]:
        """The delays, in seconds, before each retry."""
        for i in range(self.limit):
            delay = self.delays[min(i, len(self.delays) - 1)] if self.delays else 0.0
            yield self._rng.uniform(0, delay) if self.jitter else delay


class RetryWait(Exception):
    """Raised by a ``retry`` block that must wait before its next attempt: the endpoint
    rolls the message's transaction back, sleeps `delay` seconds with no transaction
    open, and processes the message again. Activities let it through (``catch`` does
    not see it); it never leaves the endpoint."""

    def __init__(self, delay: float, cause: BaseException) -> None:
        super().__init__(f"retrying in {delay:g}s after {type(cause).__name__}: {cause}")
        self.delay = delay
        self.cause = cause


class RetryAttempts:
    """Where each ``retry`` block of one message stands, kept across the message's
    re-runs (a block is known by the activity and how many times it ran before in
    the same run)."""

    __slots__ = ("_delays", "_seen", "_used")

    def __init__(self) -> None:
        self._delays: dict[tuple[int, int], list[float]] = {}
        self._used: dict[tuple[int, int], int] = {}
        self._seen: dict[int, int] = {}

    def begin_run(self) -> None:
        """A new run of the message starts."""
        self._seen.clear()

    def key_for(self, activity: Any) -> tuple[int, int]:
        occurrence = self._seen.get(id(activity), 0)
        self._seen[id(activity)] = occurrence + 1
        return id(activity), occurrence

    def delays(self, key: tuple[int, int], policy: RetryPolicy) -> list[float]:
        """The block's delays, drawn once per message (jitter stays put across runs)."""
        if key not in self._delays:
            self._delays[key] = list(policy.schedule())
        return self._delays[key]

    def used(self, key: tuple[int, int]) -> int:
        return self._used.get(key, 0)

    def set_used(self, key: tuple[int, int], used: int) -> None:
        self._used[key] = used


_attempts: ContextVar[RetryAttempts | None] = ContextVar("stepsaga_retry_attempts",
                                                        default=None)


def current_attempts() -> RetryAttempts | None:
    """The retry bookkeeping of the message being processed, if an endpoint set one."""
    return _attempts.get()


def track_attempts(attempts: RetryAttempts | None) -> Any:
    """Set the bookkeeping for the current message; returns the token to reset it."""
    return _attempts.set(attempts)


def untrack_attempts(token: Any) -> None:
    _attempts.reset(token)
