"""Retry policies for the `retry` activity: immediate, interval, incremental, exponential."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta


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
