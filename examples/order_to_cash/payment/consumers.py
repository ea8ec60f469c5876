"""The payment service's consumers: charge and refund, each idempotent per order."""

from __future__ import annotations

import logging
from decimal import Decimal

from core_saga import ConsumeContext, Consumer

from ..messages import (
    ChargePayment,
    PaymentCharged,
    PaymentDeclined,
    PaymentRefunded,
    RefundPayment,
)
from .gateway import PaymentGateway
from .repository import (
    CHARGE,
    CHARGED,
    DECLINED,
    NOT_CHARGED,
    REFUND,
    REFUNDED,
    LedgerEntry,
    PaymentRepository,
)

log = logging.getLogger("examples.order_to_cash.payment")


class ChargePaymentConsumer(Consumer[ChargePayment]):
    """Charges an order once. A repeated command answers what the first one decided;
    an order already refunded (or refused as never charged) is never charged; a
    transient gateway failure raises, so the command is redelivered."""

    def __init__(self, gateway: PaymentGateway) -> None:
        self.gateway = gateway

    async def consume(self, ctx: ConsumeContext[ChargePayment]) -> None:
        command = ctx.message
        repo = PaymentRepository(ctx.transaction)
        charge = await repo.get(command.order_id, CHARGE)
        if charge is None:
            charge = await self._charge(ctx, repo)
        if charge.status == CHARGED:
            ctx.publish(PaymentCharged(order_id=command.order_id, amount=charge.amount,
                                       currency=charge.currency,
                                       payment_reference=charge.reference or ""))
        else:
            ctx.publish(PaymentDeclined(order_id=command.order_id, reason=charge.note))

    async def _charge(self, ctx: ConsumeContext[ChargePayment], repo: PaymentRepository
                      ) -> LedgerEntry:
        command = ctx.message
        if await repo.get(command.order_id, REFUND) is not None:
            entry = LedgerEntry(command.order_id, CHARGE, DECLINED, command.amount,
                                command.currency, None,
                                "the order was closed (refund recorded) before any charge",
                                ctx.now)
        else:
            result = await self.gateway.charge(
                order_id=command.order_id, amount=command.amount, currency=command.currency,
                idempotency_key=f"{command.order_id}:charge")
            entry = LedgerEntry(command.order_id, CHARGE,
                                CHARGED if result.approved else DECLINED, command.amount,
                                command.currency, result.reference,
                                "charged" if result.approved
                                else result.decline_reason or "declined", ctx.now)
        await repo.add(entry)
        return entry


class RefundPaymentConsumer(Consumer[RefundPayment]):
    """Refunds an order once, whatever the number of commands: the first refunds what
    was charged (or records that nothing was), the others repeat that answer."""

    def __init__(self, gateway: PaymentGateway) -> None:
        self.gateway = gateway

    async def consume(self, ctx: ConsumeContext[RefundPayment]) -> None:
        command = ctx.message
        repo = PaymentRepository(ctx.transaction)
        refund = await repo.get(command.order_id, REFUND)
        if refund is None:
            refund = await self._refund(ctx, repo)
            note = refund.note
        else:
            note = f"already settled: {refund.note}"
        ctx.publish(PaymentRefunded(order_id=command.order_id,
                                    refunded=refund.status == REFUNDED,
                                    amount=refund.amount, currency=refund.currency, note=note))

    async def _refund(self, ctx: ConsumeContext[RefundPayment], repo: PaymentRepository
                      ) -> LedgerEntry:
        command = ctx.message
        charge = await repo.get(command.order_id, CHARGE)
        if charge is None or charge.status != CHARGED:
            entry = LedgerEntry(command.order_id, REFUND, NOT_CHARGED, Decimal(0),
                                command.currency, None,
                                f"order {command.order_id} was never charged: nothing to "
                                "refund", ctx.now)
        else:
            if charge.amount != command.amount:
                log.warning("refund of %s asks %s %s, the charge was %s: refunding the charge",
                            command.order_id, command.amount, command.currency, charge.amount)
            result = await self.gateway.refund(
                order_id=command.order_id, charge_reference=charge.reference or "",
                amount=charge.amount, currency=charge.currency,
                idempotency_key=f"{command.order_id}:refund")
            entry = LedgerEntry(command.order_id, REFUND, REFUNDED, charge.amount,
                                charge.currency, result.reference,
                                f"refunded {charge.amount} {charge.currency}", ctx.now)
        await repo.add(entry)
        return entry
