"""The Order-to-Cash app hosted in the test harness, and the ledger checks of issue 4
("How we will check it")."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from bridge.testing import SupervisorDouble
from core_saga.extension import RedeliveryPolicy
from core_saga.persistence import SagaStore
from core_saga.testing import SagaTestHarness
from examples.order_to_cash import OrderSaga, OrderSagaSettings, create_tables, host_services
from examples.order_to_cash.app import SERVICES
from examples.order_to_cash.inventory import (
    RESERVED,
    reservation_of,
    set_stock_levels,
    stock_levels,
)
from examples.order_to_cash.orders import (
    CANCELED,
    COMPLETED,
    OrderRecord,
    OrderRepository,
    OrderRequest,
    OrderService,
)
from examples.order_to_cash.payment import (
    FakePaymentGateway,
    LedgerEntry,
    PaymentRepository,
    balance,
)
from examples.order_to_cash.queues import ORDER_SAGA_QUEUE
from examples.order_to_cash.shipping import CREATED, FakeCarrier, Shipment, ShippingRepository
from examples.order_to_cash.state import OrderState

STOCK = {"BOOK-1": 10, "MUG-1": 10, "LAMP-1": 2}


def order_request(*lines: tuple[str, int, str], currency: str = "EUR",
                  risk_flags: tuple[str, ...] = (), customer_id: str = "c-1",
                  amount: str | None = None) -> OrderRequest:
    """An order for `lines` of (sku, quantity, unit price); the amount is their sum
    unless given."""
    lines = lines or (("BOOK-1", 2, "12.50"),)
    total = sum((Decimal(p) * q for _, q, p in lines), Decimal(0))
    return OrderRequest.model_validate({
        "customerId": customer_id, "currency": currency,
        "lines": [{"sku": s, "quantity": q, "unitPrice": p} for s, q, p in lines],
        "amount": amount if amount is not None else str(total),
        "riskFlags": list(risk_flags)})


async def ledger_of(store: SagaStore, order_id: str) -> list[LedgerEntry]:
    async with store.transaction() as tx:
        return await PaymentRepository(tx).entries(order_id)


async def shipment_of(store: SagaStore, order_id: str) -> Shipment | None:
    async with store.transaction() as tx:
        return await ShippingRepository(tx).get(order_id)


@dataclass
class OrderToCash:
    """Every service and the saga in one harness, with the fakes at hand."""

    h: SagaTestHarness
    store: SagaStore
    gateway: FakePaymentGateway
    carrier: FakeCarrier
    orders: OrderService
    supervisor: SupervisorDouble
    """Plays EventBridge and the supervisor workflows (hand-offs, outcomes, acks)."""
    stock: dict[str, int] = field(default_factory=lambda: dict(STOCK))
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _next_id: str | None = None

    def new_order_id(self) -> str:
        if self._next_id is not None:
            chosen, self._next_id = self._next_id, None
            return chosen
        return f"order-{next(self._ids):04d}"

    async def submit(self, request: OrderRequest | None = None, *, order_id: str | None = None,
                     idempotency_key: str | None = None) -> str:
        """Place an order through the order service and run until idle."""
        self._next_id = order_id
        done = await self.orders.submit(request or order_request(),
                                        idempotency_key=idempotency_key)
        await self.h.drain()
        return done.order_id

    async def order(self, order_id: str) -> OrderRecord:
        found = await self.orders.get(order_id)
        assert found is not None, f"no order {order_id}"
        return found

    async def saga(self, order_id: str) -> OrderState:
        found = await self.h.instance(OrderSaga, order_id)
        assert found is not None, f"no saga instance {order_id}"
        return found

    async def assert_books_balance(self, *order_ids: str) -> None:
        """The ledger checks of issue 4 for `order_ids` (see :func:`assert_books_balance`)."""
        await assert_books_balance(self.store, self.gateway, self.stock, order_ids)


async def assert_books_balance(store: SagaStore, gateway: FakePaymentGateway,
                               initial_stock: dict[str, int], order_ids: Iterable[str]) -> None:
    """The checks of issue 4: every order terminal, with a reason when canceled, and in
    the saga's state; charges − refunds = amount when completed, 0 when canceled (in the
    ledger and at the gateway); a canceled order holds no stock; at most one shipment per
    order (the key guarantees it), live only for a completed order; and the stock on hand
    is what the completed orders left."""
    expected_stock = dict(initial_stock)
    for order_id in order_ids:
        async with store.transaction() as tx:
            order = await OrderRepository(tx).get(order_id)
        assert order is not None, f"no order {order_id}"
        saga = await store.get_instance(OrderSaga.model.name, order_id)
        assert order.status in (COMPLETED, CANCELED), f"{order_id} is {order.status}"
        assert saga is not None and saga.state == order.status, (order, saga)
        entries = await ledger_of(store, order_id)
        kept = balance(entries)
        assert kept == gateway.net(order_id), (order_id, entries)
        reservation = await reservation_of(store, order_id)
        shipment = await shipment_of(store, order_id)
        if order.status == COMPLETED:
            assert kept == order.amount, (order_id, entries)
            assert order.tracking_id and order.reason is None
            assert reservation is not None and reservation.status == RESERVED
            assert shipment is not None and shipment.status == CREATED
            assert shipment.tracking_id == order.tracking_id
            for line in reservation.lines:
                expected_stock[line.sku] -= line.quantity
        else:
            assert kept == 0, (order_id, entries)
            assert order.reason and order.cancel_code, order
            assert reservation is None or reservation.status != RESERVED, reservation
            assert shipment is None or shipment.status != CREATED, shipment
    assert await stock_levels(store, expected_stock) == expected_stock


async def start_order_to_cash(store: SagaStore, *,
                              settings: OrderSagaSettings | None = None,
                              gateway: FakePaymentGateway | None = None,
                              stock: dict[str, int] | None = None,
                              services: tuple[str, ...] = SERVICES,
                              max_deliveries: int = 5) -> OrderToCash:
    """The app (`services` of it: default all) in a harness on `store`, with stock set."""
    h = SagaTestHarness(store=store, redelivery=RedeliveryPolicy(
        max_deliveries=max_deliveries, base_delay=timedelta(0)))
    await create_tables(store)
    supervisor = SupervisorDouble(h)
    gateway = gateway or FakePaymentGateway(seed=7)
    carrier = FakeCarrier(clock=h.clock)
    host_services(h, services=services, saga_settings=settings, gateway=gateway,
                  carrier=carrier, clock=h.clock)
    app = OrderToCash(h=h, store=store, gateway=gateway, carrier=carrier,
                      supervisor=supervisor, orders=OrderService(h.outbox()))
    app.orders.new_order_id = app.new_order_id
    if stock is not None:
        app.stock = dict(stock)
    await set_stock_levels(store, app.stock)
    return app


SAGA_QUEUE = ORDER_SAGA_QUEUE
