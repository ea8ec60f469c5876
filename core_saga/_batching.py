"""Batching windows that follow the arrival rate: how long a partial batch of SQS calls
(deletes, sends) waits for more items before it goes."""

from __future__ import annotations

import math
import time


class ArrivalRate:
    """Items per second arriving at one batcher, decayed exponentially over `tau`
    seconds: recent arrivals count fully, those a few `tau` ago hardly at all."""

    __slots__ = ("_at", "_tau", "_weight")

    def __init__(self, tau: float = 1.0) -> None:
        if tau <= 0:
            raise ValueError(f"tau must be positive seconds, not {tau!r}")
        self._tau = tau
        self._weight = 0.0
        self._at: float | None = None

    def arrived(self, count: int = 1, now: float | None = None) -> None:
        """Count `count` items arriving at `now` (``time.monotonic()`` by default)."""
        now = time.monotonic() if now is None else now
        if self._at is not None:
            self._weight *= math.exp(-max(0.0, now - self._at) / self._tau)
        self._weight += count
        self._at = now

    def per_second(self, now: float | None = None) -> float:
        """The current estimate (0 before anything arrived)."""
        if self._at is None:
            return 0.0
        now = time.monotonic() if now is None else now
        return self._weight * math.exp(-max(0.0, now - self._at) / self._tau) / self._tau


def batch_wait(rate: float, pending: int, capacity: int, max_wait: float) -> float:
    """Seconds a batch holding `pending` of `capacity` items should wait for more, at
    `rate` items per second, never longer than `max_wait`.

    0 when it is full, or when fewer than one more item is expected within `max_wait`
    (waiting would add latency and save no call); otherwise the time the batch is
    expected to take to fill, capped at `max_wait`. So a quiet queue sends at once, and
    a busy one fills its batches — whatever the machine, the window follows the load.
    """
    if pending >= capacity or max_wait <= 0 or rate * max_wait < 1.0:
        return 0.0
    return min(max_wait, (capacity - pending) / rate)
