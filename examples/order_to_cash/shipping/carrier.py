"""The carrier interface, and a fake carrier that can be down for a while."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from core_saga import Clock, SystemClock

from ..messages import StockLine


class CarrierUnavailable(Exception):
    """The carrier's API is down or timed out; try again later."""


@dataclass(frozen=True)
class Label:
    """A shipping label the carrier issued."""

    tracking_id: str
    carrier: str


class Carrier(Protocol):
    """What the shipping service needs from a carrier."""

    async def create_label(self, *, order_id: str, lines: Sequence[StockLine],
                           idempotency_key: str) -> Label:
        """Issue a label (the same key twice: the same label); raise
        :class:`CarrierUnavailable` when the carrier is down."""
        ...

    async def void_label(self, *, tracking_id: str) -> None:
        """Void a label; raise :class:`CarrierUnavailable` when the carrier is down."""
        ...

    async def label_for(self, *, idempotency_key: str) -> Label | None:
        """The label issued under `idempotency_key`, if any (carriers that take
        idempotency keys look them up); raise :class:`CarrierUnavailable` when the
        carrier is down."""
        ...


class FakeCarrier:
    """An in-process carrier for tests and the demo.

    It is down until :attr:`down_until` (by `clock`; :meth:`down_for` sets it), for the
    next :meth:`fail_next` calls, and for the orders given to :meth:`refuse` (until
    :meth:`accept`). It keeps the labels it issued (:attr:`labels`) and voided
    (:attr:`voided`).
    """

    def __init__(self, *, clock: Clock | None = None, name: str = "FAKEX",
                 down_until: datetime | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.name = name
        self.down_until = down_until
        self.labels: dict[str, Label] = {}
        """idempotency key → label."""
        self.voided: set[str] = set()
        self.calls = 0
        self._fail_next = 0
        self._refused: set[str] = set()

    def down_for(self, window: timedelta) -> None:
        """Be down from now for `window`."""
        self.down_until = self.clock.now() + window

    def fail_next(self, calls: int) -> None:
        """Fail the next `calls` calls."""
        self._fail_next += calls

    def refuse(self, order_id: str) -> None:
        """Fail every label for `order_id` (an outage on its route) until :meth:`accept`."""
        self._refused.add(order_id)

    def accept(self, order_id: str) -> None:
        """Serve `order_id` again."""
        self._refused.discard(order_id)

    def _check_up(self) -> None:
        self.calls += 1
        if self._fail_next > 0:
            self._fail_next -= 1
            raise CarrierUnavailable(f"{self.name}: service unavailable")
        if self.down_until is not None and self.clock.now() < self.down_until:
            raise CarrierUnavailable(f"{self.name}: down until {self.down_until.isoformat()}")

    async def create_label(self, *, order_id: str, lines: Sequence[StockLine],
                           idempotency_key: str) -> Label:
        self._check_up()
        if order_id in self._refused:
            raise CarrierUnavailable(f"{self.name}: no service for order {order_id} now")
        label = self.labels.get(idempotency_key)
        if label is None:
            label = Label(f"{self.name}-{len(self.labels) + 1:08d}", self.name)
            self.labels[idempotency_key] = label
        return label

    async def void_label(self, *, tracking_id: str) -> None:
        self._check_up()
        self.voided.add(tracking_id)

    async def label_for(self, *, idempotency_key: str) -> Label | None:
        self._check_up()
        return self.labels.get(idempotency_key)
