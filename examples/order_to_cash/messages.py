"""Every message contract of the Order-to-Cash app.

Commands are named for what they ask (``ChargePayment``), events for what happened
(``PaymentCharged``). All are :class:`core_saga.Message` types in the namespace
``order_to_cash``: fields are snake_case in Python and camelCase on the wire, and the
message type is ``urn:message:order_to_cash:<Name>:v1``. Amounts are :class:`Decimal`
(never float) with the ISO 4217 currency code beside them; every message carries the
``order_id`` the saga correlates on.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from core_saga import Message

NAMESPACE = "order_to_cash"

CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$",
                                    description="ISO 4217 code, e.g. EUR")]
"""An ISO 4217 currency code: three capital letters."""

CancelCode = Literal["payment_declined", "inventory_unavailable", "shipping_deadline",
                     "shipping_abandoned", "review_rejected", "review_timed_out",
                     "supervision_lost", "operator_canceled"]
"""Why an order was canceled, for machines; ``OrderCanceled.reason`` says it for people."""


class _Contract(BaseModel):
    """A value nested in a message: the same wire conventions as a message."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True,
                              extra="ignore", frozen=True)


class OrderLine(_Contract):
    """One line of an order: how many of which article, at what unit price."""

    sku: str
    quantity: int = Field(gt=0)
    unit_price: Decimal


class StockLine(_Contract):
    """How many of an article to reserve, release or ship."""

    sku: str
    quantity: int = Field(gt=0)


class OrderMessage(Message):
    """Base class of every message here: each carries the order id the saga correlates
    on."""

    message_namespace = NAMESPACE
    order_id: str


# -- the order service ------------------------------------------------------------------

class OrderSubmitted(OrderMessage):
    """Published by the order service once the order is stored: it starts the saga."""

    customer_id: str
    lines: tuple[OrderLine, ...]
    amount: Decimal
    currency: CurrencyCode
    risk_flags: tuple[str, ...] = ()
    """Signals from fraud screening (``new_account``, ``address_mismatch``…); any flag
    sends the order to manual review."""


class OrderCompleted(OrderMessage):
    """Published by the saga: the order is paid, reserved and shipped."""

    tracking_id: str


class OrderCanceled(OrderMessage):
    """Published by the saga: the order ended without shipping; every step that had
    taken effect was compensated before this was published."""

    code: CancelCode
    reason: str


# -- payment ----------------------------------------------------------------------------

class ChargePayment(OrderMessage):
    """Command to the payment service: charge the order's amount, once."""

    amount: Decimal
    currency: CurrencyCode


class PaymentCharged(OrderMessage):
    """The charge went through at the gateway."""

    amount: Decimal
    currency: CurrencyCode
    payment_reference: str


class PaymentDeclined(OrderMessage):
    """The gateway declined the charge; nothing was taken."""

    reason: str


class RefundPayment(OrderMessage):
    """Command to the payment service: give the order's charge back, once. Safe to
    repeat, and safe for an order that was never charged."""

    amount: Decimal
    currency: CurrencyCode
    reason: str


class PaymentRefunded(OrderMessage):
    """The refund is settled. `refunded` says whether money went back (False: the
    order was never charged, and `note` says so)."""

    refunded: bool
    amount: Decimal
    currency: CurrencyCode
    note: str


# -- inventory --------------------------------------------------------------------------

class ReserveInventory(OrderMessage):
    """Command to the inventory service: reserve every line, or none."""

    lines: tuple[StockLine, ...]


class InventoryReserved(OrderMessage):
    """Every line of the order is reserved."""


class InventoryUnavailable(OrderMessage):
    """Some line could not be reserved; nothing is held for the order."""

    missing_skus: tuple[str, ...]
    reason: str


class ReleaseInventory(OrderMessage):
    """Command to the inventory service: put the order's reserved stock back, once."""


class InventoryReleased(OrderMessage):
    """The order holds no stock. `released` says whether this put any back."""

    released: bool
    note: str


# -- shipping ---------------------------------------------------------------------------

class CreateShipment(OrderMessage):
    """Command to the shipping service: get a label from the carrier. `attempt`
    counts the saga's tries, so a reply to an old try is told from the current one."""

    attempt: int = Field(ge=1)
    lines: tuple[StockLine, ...]


class ShipmentCreated(OrderMessage):
    """The carrier issued a label."""

    tracking_id: str
    carrier: str


class ShipmentFailed(OrderMessage):
    """The carrier could not issue a label now (an outage): try again later."""

    attempt: int
    reason: str


class CancelShipment(OrderMessage):
    """Command to the shipping service: void the order's label if there is one, and
    never issue one afterwards."""


class ShipmentCanceled(OrderMessage):
    """The order has no live shipment. `voided` says whether a label was voided."""

    voided: bool
    note: str


# -- the saga's own timers ----------------------------------------------------------------

class ShipmentDeadlineExpired(OrderMessage):
    """Timer: shipping has not succeeded within the deadline."""


class RetryShipment(OrderMessage):
    """Timer: the backoff after a failed shipment attempt is over."""

    attempt: int

__all__ = [
    "NAMESPACE",
    "CancelCode",
    "CancelShipment",
    "ChargePayment",
    "CreateShipment",
    "CurrencyCode",
    "InventoryReleased",
    "InventoryReserved",
    "InventoryUnavailable",
    "OrderCanceled",
    "OrderCompleted",
    "OrderLine",
    "OrderMessage",
    "OrderSubmitted",
    "PaymentCharged",
    "PaymentDeclined",
    "PaymentRefunded",
    "RefundPayment",
    "ReleaseInventory",
    "ReserveInventory",
    "RetryShipment",
    "ShipmentCanceled",
    "ShipmentCreated",
    "ShipmentDeadlineExpired",
    "ShipmentFailed",
    "StockLine",
]
