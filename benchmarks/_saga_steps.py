"""The Order-to-Cash saga's steps as plain functions of a ``core_saga.Transaction``, for
the peers (DBOS, Restate): each does what the matching stepsaga consumer does on its
first delivery, through the app's own repositories."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from order_to_cash import BenchGateway, order_request

from core_saga import Transaction
from examples.order_to_cash.inventory.repository import (
    RESERVED,
    UNAVAILABLE,
    InventoryRepository,
    Reservation,
)
from examples.order_to_cash.messages import OrderLine, StockLine
from examples.order_to_cash.orders import OrderRequest
from examples.order_to_cash.orders.repository import (
    CANCELED,
    COMPLETED,
    SUBMITTED,
    OrderRecord,
    OrderRepository,
)
from examples.order_to_cash.orders.service import fingerprint
from examples.order_to_cash.payment.repository import (
    CHARGE,
    CHARGED,
    DECLINED,
    NOT_CHARGED,
    REFUND,
    REFUNDED,
    LedgerEntry,
    PaymentRepository,
)
from examples.order_to_cash.shipping import FakeCarrier
from examples.order_to_cash.shipping.repository import (
    CREATED,
    Shipment,
    ShippingRepository,
)

__all__ = ["CANCELED", "COMPLETED", "OrderSteps"]


def stock_lines(request: OrderRequest) -> list[StockLine]:
    """The order's lines summed per article, sorted (as the saga keeps them)."""
    quantities: dict[str, int] = {}
    for line in request.lines:
        quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
    return [StockLine(sku=sku, quantity=q) for sku, q in sorted(quantities.items())]


class OrderSteps:
    """The steps of `orders` orders of the benchmark mix. The requests are built once,
    before any clock starts: the stepsaga side validates each request once, at
    submission, and keeps the summed lines in the saga's state."""

    def __init__(self, orders: int) -> None:
        self.requests = [order_request(i) for i in range(orders)]
        self.stock_lines = [stock_lines(request) for request in self.requests]
        self.gateway = BenchGateway(seed=1)
        self.carrier = FakeCarrier()

    async def place_order(self, tx: Transaction, order_id: str, i: int) -> None:
        request = self.requests[i]  # OrderService.submit
        now = datetime.now(UTC)
        await OrderRepository(tx).insert(OrderRecord(
            order_id=order_id, customer_id=request.customer_id, currency=request.currency,
            amount=request.amount, lines=tuple(OrderLine(sku=x.sku, quantity=x.quantity,
                                                         unit_price=x.unit_price)
                                               for x in request.lines),
            risk_flags=tuple(request.risk_flags), status=SUBMITTED, idempotency_key=None,
            request_hash=fingerprint(request), created_at=now, updated_at=now))

    async def charge(self, tx: Transaction, order_id: str, i: int) -> bool:
        request = self.requests[i]  # ChargePaymentConsumer
        repo = PaymentRepository(tx)
        assert await repo.get(order_id, CHARGE) is None
        assert await repo.get(order_id, REFUND) is None
        result = await self.gateway.charge(order_id=order_id, amount=request.amount,
                                      currency=request.currency,
                                      idempotency_key=f"{order_id}:charge")
        await repo.add(LedgerEntry(order_id, CHARGE, CHARGED if result.approved else DECLINED,
                                   request.amount, request.currency, result.reference,
                                   "charged" if result.approved
                                   else result.decline_reason or "declined",
                                   datetime.now(UTC)))
        return result.approved

    async def reserve(self, tx: Transaction, order_id: str, i: int) -> bool:
        repo = InventoryRepository(tx)  # ReserveInventoryConsumer
        assert await repo.get_reservation(order_id) is None
        lines = self.stock_lines[i]
        taken, missing = [], []
        for line in lines:
            if await repo.take_stock(line.sku, line.quantity):
                taken.append(line)
            else:
                missing.append(line.sku)
        if missing:
            for line in taken:
                await repo.return_stock(line.sku, line.quantity)
            status, note = UNAVAILABLE, f"not enough stock of {', '.join(missing)}"
        else:
            status, note = RESERVED, f"reserved {len(lines)} line(s)"
        now = datetime.now(UTC)
        await repo.add_reservation(Reservation(order_id, status, tuple(lines), note, now, now))
        return not missing

    async def refund(self, tx: Transaction, order_id: str) -> None:
        repo = PaymentRepository(tx)  # RefundPaymentConsumer
        assert await repo.get(order_id, REFUND) is None
        charged = await repo.get(order_id, CHARGE)
        now = datetime.now(UTC)
        if charged is None or charged.status != CHARGED:
            entry = LedgerEntry(order_id, REFUND, NOT_CHARGED, Decimal(0), "EUR", None,
                                "never charged", now)
        else:
            result = await self.gateway.refund(order_id=order_id,
                                          charge_reference=charged.reference or "",
                                          amount=charged.amount, currency=charged.currency,
                                          idempotency_key=f"{order_id}:refund")
            entry = LedgerEntry(order_id, REFUND, REFUNDED, charged.amount, charged.currency,
                                result.reference,
                                f"refunded {charged.amount} {charged.currency}", now)
        await repo.add(entry)

    async def ship(self, tx: Transaction, order_id: str, i: int) -> str:
        repo = ShippingRepository(tx)  # CreateShipmentConsumer
        assert await repo.get(order_id) is None
        label = await self.carrier.create_label(order_id=order_id, lines=self.stock_lines[i],
                                           idempotency_key=f"{order_id}:label")
        now = datetime.now(UTC)
        await repo.add(Shipment(order_id, CREATED, label.tracking_id, label.carrier,
                                "label issued on attempt 1", now, now))
        return label.tracking_id

    async def outcome(self, tx: Transaction, order_id: str, status: str, code: str | None,
                      reason: str | None, tracking_id: str | None) -> None:
        await OrderRepository(tx).set_outcome(  # OrderCompleted/CanceledConsumer
            order_id, status=status, cancel_code=code, reason=reason,
            tracking_id=tracking_id, at=datetime.now(UTC))

