"""The payment gateway interface, and a fake one that can be told to fail."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


class GatewayUnavailable(Exception):
    """A transient gateway failure (timeout, 503). The consumer lets it propagate, so the
    message is rolled back and redelivered with backoff."""


@dataclass(frozen=True)
class ChargeResult:
    """The gateway's answer to a charge."""

    approved: bool
    reference: str
    """The gateway's id of the charge (or of the declined attempt)."""
    decline_reason: str | None = None


@dataclass(frozen=True)
class RefundResult:
    """The gateway's answer to a refund."""

    reference: str


class PaymentGateway(Protocol):
    """What the payment service needs from a card processor. Both calls take an
    idempotency key: the same key twice moves money once (real gateways offer this)."""

    async def charge(self, *, order_id: str, amount: Decimal, currency: str,
                     idempotency_key: str) -> ChargeResult:
        """Charge `amount`; raise :class:`GatewayUnavailable` on a transient failure."""
        ...

    async def refund(self, *, order_id: str, charge_reference: str, amount: Decimal,
                     currency: str, idempotency_key: str) -> RefundResult:
        """Refund `amount` of a charge; raise :class:`GatewayUnavailable` on a transient
        failure."""
        ...


class FakePaymentGateway:
    """An in-process gateway for tests and the demo: seeded, so a run is repeatable.

    - `decline_rate`: the share of new charges declined (``insufficient_funds``);
    - `transient_failure_rate`: the share of calls that raise :class:`GatewayUnavailable`;
    - `latency`: seconds each call takes.

    :meth:`decline` and :meth:`fail_next` force an outcome. It honours idempotency keys
    and keeps what it did in :attr:`charges` and :attr:`refunds`, the gateway-side
    truth a test can hold the ledger against.
    """

    def __init__(self, seed: int = 0, *, decline_rate: float = 0.0,
                 transient_failure_rate: float = 0.0, latency: float = 0.0) -> None:
        for name, rate in (("decline_rate", decline_rate),
                           ("transient_failure_rate", transient_failure_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {rate}")
        if latency < 0:
            raise ValueError(f"latency must be 0 or more, not {latency}")
        self._random = random.Random(seed)
        self.decline_rate = decline_rate
        self.transient_failure_rate = transient_failure_rate
        self.latency = latency
        self.charges: dict[str, tuple[str, Decimal, ChargeResult]] = {}
        """idempotency key → (order id, amount, result)."""
        self.refunds: dict[str, tuple[str, Decimal, RefundResult]] = {}
        """idempotency key → (order id, amount, result)."""
        self.calls = 0
        self._declined_orders: set[str] = set()
        self._fail_next = 0

    def decline(self, order_id: str) -> None:
        """Decline every charge of `order_id`."""
        self._declined_orders.add(order_id)

    def fail_next(self, calls: int) -> None:
        """Make the next `calls` calls raise GatewayUnavailable."""
        self._fail_next += calls

    async def _call(self) -> None:
        self.calls += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        if self._fail_next > 0:
            self._fail_next -= 1
            raise GatewayUnavailable("payment gateway unavailable (forced)")
        if self.transient_failure_rate and self._random.random() < self.transient_failure_rate:
            raise GatewayUnavailable("payment gateway timed out")

    async def charge(self, *, order_id: str, amount: Decimal, currency: str,
                     idempotency_key: str) -> ChargeResult:
        await self._call()
        done = self.charges.get(idempotency_key)
        if done is not None:
            return done[2]
        reference = f"ch_{len(self.charges) + 1:06d}"
        declined = order_id in self._declined_orders or (
            self.decline_rate > 0 and self._random.random() < self.decline_rate)
        result = (ChargeResult(False, reference, "insufficient_funds") if declined
                  else ChargeResult(True, reference))
        self.charges[idempotency_key] = (order_id, amount, result)
        return result

    async def refund(self, *, order_id: str, charge_reference: str, amount: Decimal,
                     currency: str, idempotency_key: str) -> RefundResult:
        await self._call()
        done = self.refunds.get(idempotency_key)
        if done is not None:
            return done[2]
        result = RefundResult(f"re_{len(self.refunds) + 1:06d}")
        self.refunds[idempotency_key] = (order_id, amount, result)
        return result

    def net(self, order_id: str) -> Decimal:
        """Money the gateway holds for `order_id`: approved charges minus refunds."""
        charged = sum((a for o, a, r in self.charges.values() if o == order_id and r.approved),
                      Decimal(0))
        refunded = sum((a for o, a, _ in self.refunds.values() if o == order_id), Decimal(0))
        return charged - refunded
