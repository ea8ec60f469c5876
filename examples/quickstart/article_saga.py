"""The Order-to-Cash saga exactly as the reference article sketches it (section 3),
written with the DSL: PaymentPending → InventoryPending → ShippingPending → Completed,
Failed with a refund on InventoryUnavailable and on ShipmentTimeout after one hour
(`ArticleSettings.shipment_timeout`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from core_saga import BehaviorContext, Event, Message, Saga, SagaState, Schedule, State


class OrderSubmitted(Message):
    message_namespace = "article"
    order_id: str
    amount: Decimal


class ChargePayment(Message):
    message_namespace = "article"
    order_id: str
    amount: Decimal


class RefundPayment(Message):
    message_namespace = "article"
    order_id: str
    amount: Decimal


class PaymentSucceeded(Message):
    message_namespace = "article"
    order_id: str


class PaymentFailed(Message):
    message_namespace = "article"
    order_id: str
    error_code: str


class AllocateInventory(Message):
    message_namespace = "article"
    order_id: str


class InventoryAllocated(Message):
    message_namespace = "article"
    order_id: str


class InventoryUnavailable(Message):
    message_namespace = "article"
    order_id: str


class CreateShipment(Message):
    message_namespace = "article"
    order_id: str


class ShipmentCreated(Message):
    message_namespace = "article"
    order_id: str
    tracking_id: str


class ShipmentTimeout(Message):
    message_namespace = "article"
    order_id: str


@dataclass(frozen=True)
class ArticleSettings:
    """Runtime settings of the saga."""

    shipment_timeout: timedelta = timedelta(hours=1)
    """How long shipping may take before the order is refunded and failed."""


DEFAULT_SETTINGS = ArticleSettings()


class OrderState(SagaState):
    amount: Decimal = Decimal(0)
    tracking_id: str | None = None
    failure_reason: str | None = None
    shipment_timeout_token: str | None = None


def _by_order(m: OrderSubmitted | PaymentSucceeded | PaymentFailed | InventoryAllocated
              | InventoryUnavailable | ShipmentCreated) -> str:
    return m.order_id


Ctx = BehaviorContext[OrderState, OrderSubmitted]


def _remember_amount(ctx: Ctx) -> None:
    ctx.saga.amount = ctx.message.amount


def _refund(ctx: BehaviorContext[OrderState, Message]) -> RefundPayment:
    return RefundPayment(order_id=ctx.saga.correlation_id, amount=ctx.saga.amount)


class ArticleOrderSaga(Saga[OrderState]):
    payment_pending = State()
    inventory_pending = State()
    shipping_pending = State()
    completed = State(terminal=True)
    failed = State(terminal=True)

    order_submitted = Event(OrderSubmitted, correlate_by=_by_order)
    payment_succeeded = Event(PaymentSucceeded, correlate_by=_by_order)
    payment_failed = Event(PaymentFailed, correlate_by=_by_order)
    inventory_allocated = Event(InventoryAllocated, correlate_by=_by_order)
    inventory_unavailable = Event(InventoryUnavailable, correlate_by=_by_order)
    shipment_created = Event(ShipmentCreated, correlate_by=_by_order)
    shipment_timeout = Schedule(
        ShipmentTimeout, token_field="shipment_timeout_token",
        delay=lambda ctx: (ctx.machine.settings or DEFAULT_SETTINGS).shipment_timeout)

    def define(self) -> None:
        self.initially(
            self.when(self.order_submitted)
            .then(_remember_amount)
            .send("charge-payment",
                  lambda ctx: ChargePayment(order_id=ctx.saga.correlation_id,
                                            amount=ctx.saga.amount),
                  message_type=ChargePayment, compensable=True, compensation=RefundPayment)
            .transition_to(self.payment_pending),
        )
        self.during(
            self.payment_pending,
            self.when(self.payment_succeeded)
            .send("allocate-inventory",
                  lambda ctx: AllocateInventory(order_id=ctx.saga.correlation_id))
            .transition_to(self.inventory_pending),
            self.when(self.payment_failed)
            .then(lambda ctx: setattr(ctx.saga, "failure_reason", ctx.message.error_code))
            .transition_to(self.failed),
        )
        self.during(
            self.inventory_pending,
            self.when(self.inventory_allocated)
            .send("create-shipment", lambda ctx: CreateShipment(order_id=ctx.saga.correlation_id))
            .schedule(self.shipment_timeout,
                      lambda ctx: ShipmentTimeout(order_id=ctx.saga.correlation_id))
            .transition_to(self.shipping_pending),
            self.when(self.inventory_unavailable)
            .send("charge-payment", _refund, message_type=RefundPayment)
            .then(lambda ctx: setattr(ctx.saga, "failure_reason", "inventory unavailable"))
            .transition_to(self.failed),
        )
        self.during(
            self.shipping_pending,
            self.when(self.shipment_created)
            .unschedule(self.shipment_timeout)
            .then(lambda ctx: setattr(ctx.saga, "tracking_id", ctx.message.tracking_id))
            .transition_to(self.completed),
            self.when(self.shipment_timeout.received)
            .send("charge-payment", _refund, message_type=RefundPayment)
            .then(lambda ctx: setattr(ctx.saga, "failure_reason", "shipment timed out"))
            .transition_to(self.failed),
        )
