"""The payment service alone: charge and refund idempotent per order, transient
gateway failures redelivered, and the seeded fake gateway."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from core_saga.extension import RedeliveryPolicy
from core_saga.persistence import SagaStore
from core_saga.testing import SagaTestHarness
from examples.order_to_cash import create_tables, host_services
from examples.order_to_cash.messages import (
    ChargePayment,
    PaymentCharged,
    PaymentDeclined,
    PaymentRefunded,
    RefundPayment,
)
from examples.order_to_cash.payment import FakePaymentGateway, balance
from examples.order_to_cash.queues import PAYMENT_QUEUE

from .support import ledger_of

CHARGE = ChargePayment(order_id="o-1", amount=Decimal("25.00"), currency="EUR")
REFUND = RefundPayment(order_id="o-1", amount=Decimal("25.00"), currency="EUR",
                       reason="inventory unavailable")


async def payment_service(store: SagaStore, gateway: FakePaymentGateway, *,
                          max_deliveries: int = 5) -> SagaTestHarness:
    h = SagaTestHarness(store=store, redelivery=RedeliveryPolicy(
        max_deliveries=max_deliveries, base_delay=timedelta(0)))
    await create_tables(store)
    host_services(h, services=["payment"], gateway=gateway)
    return h


async def test_a_refund_repeated_any_number_of_times_refunds_once(store: SagaStore) -> None:
    gateway = FakePaymentGateway()
    h = await payment_service(store, gateway)
    await h.send(PAYMENT_QUEUE, CHARGE)
    for _ in range(5):
        await h.send(PAYMENT_QUEUE, REFUND)  # five commands, five message ids
    answers = h.published(PaymentRefunded)
    assert [a.refunded for a in answers] == [True] * 5
    assert answers[0].note == "refunded 25.00 EUR"
    assert {a.note for a in answers[1:]} == {"already settled: refunded 25.00 EUR"}
    entries = await ledger_of(store, "o-1")
    assert [(e.kind, e.status, e.amount) for e in entries] == [
        ("charge", "charged", Decimal("25.00")), ("refund", "refunded", Decimal("25.00"))]
    assert balance(entries) == 0 and len(gateway.refunds) == 1 and gateway.net("o-1") == 0


async def test_refunding_an_order_never_charged_is_a_no_op_that_says_so(
        store: SagaStore) -> None:
    gateway = FakePaymentGateway()
    h = await payment_service(store, gateway)
    await h.send(PAYMENT_QUEUE, REFUND)
    assert h.published(PaymentRefunded) == [PaymentRefunded(
        order_id="o-1", refunded=False, amount=Decimal(0), currency="EUR",
        note="order o-1 was never charged: nothing to refund")]
    assert gateway.calls == 0
    # A charge arriving after that refund must not take money it would never give back.
    await h.send(PAYMENT_QUEUE, CHARGE)
    assert h.published(PaymentDeclined) == [PaymentDeclined(
        order_id="o-1", reason="the order was closed (refund recorded) before any charge")]
    assert gateway.calls == 0 and balance(await ledger_of(store, "o-1")) == 0


async def test_a_repeated_charge_charges_once_and_repeats_its_answer(store: SagaStore) -> None:
    gateway = FakePaymentGateway()
    h = await payment_service(store, gateway)
    for _ in range(3):
        await h.send(PAYMENT_QUEUE, CHARGE)
    answers = h.published(PaymentCharged)
    assert len(answers) == 3 and len({a.payment_reference for a in answers}) == 1
    assert len(gateway.charges) == 1 and gateway.calls == 1
    assert balance(await ledger_of(store, "o-1")) == Decimal("25.00")


async def test_a_declined_charge_stays_declined(store: SagaStore) -> None:
    gateway = FakePaymentGateway()
    gateway.decline("o-1")
    h = await payment_service(store, gateway)
    await h.send(PAYMENT_QUEUE, CHARGE)
    await h.send(PAYMENT_QUEUE, CHARGE)
    assert [d.reason for d in h.published(PaymentDeclined)] == ["insufficient_funds"] * 2
    assert h.published(PaymentCharged) == [] and gateway.calls == 1
    await h.send(PAYMENT_QUEUE, REFUND)
    assert h.published(PaymentRefunded)[0].refunded is False


async def test_a_transient_gateway_failure_rolls_back_and_the_command_is_redelivered(
        store: SagaStore) -> None:
    gateway = FakePaymentGateway()
    gateway.fail_next(2)
    h = await payment_service(store, gateway, max_deliveries=3)
    await h.send(PAYMENT_QUEUE, CHARGE)
    assert len(h.published(PaymentCharged)) == 1 and h.faults == []
    assert gateway.calls == 3 and len(gateway.charges) == 1


async def test_a_gateway_that_stays_down_leaves_nothing_half_done(store: SagaStore) -> None:
    gateway = FakePaymentGateway()
    gateway.fail_next(10)
    h = await payment_service(store, gateway, max_deliveries=3)
    await h.send(PAYMENT_QUEUE, CHARGE)
    assert len(h.faults) == 1 and "GatewayUnavailable" in h.faults[0][1]
    assert await ledger_of(store, "o-1") == [] and h.published(PaymentCharged) == []


async def test_the_fake_gateway_is_repeatable_from_its_seed() -> None:
    async def run(seed: int) -> list[object]:
        gateway = FakePaymentGateway(seed, decline_rate=0.3, transient_failure_rate=0.2)
        outcomes: list[object] = []
        for i in range(40):
            try:
                result = await gateway.charge(order_id=f"o-{i}", amount=Decimal(1),
                                              currency="EUR", idempotency_key=f"o-{i}")
                outcomes.append(result.approved)
            except Exception as exc:
                outcomes.append(type(exc).__name__)
        return outcomes

    first, again, other = await run(1), await run(1), await run(2)
    assert first == again and first != other
    assert {True, False, "GatewayUnavailable"} <= set(first)


def test_the_fake_gateway_refuses_impossible_rates() -> None:
    with pytest.raises(ValueError, match="decline_rate"):
        FakePaymentGateway(decline_rate=1.5)
    with pytest.raises(ValueError, match="latency"):
        FakePaymentGateway(latency=-1)
