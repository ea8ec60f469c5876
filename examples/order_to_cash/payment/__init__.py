"""The payment service: charges and refunds through a gateway, idempotent per order,
with a ledger table (``payments``) in the message's transaction. Hosted on the
``payment`` queue."""

from .consumers import ChargePaymentConsumer, RefundPaymentConsumer
from .gateway import (
    ChargeResult,
    FakePaymentGateway,
    GatewayUnavailable,
    PaymentGateway,
    RefundResult,
)
from .repository import LedgerEntry, PaymentRepository, balance
from .tables import create_tables, payments

__all__ = [
    "ChargePaymentConsumer",
    "ChargeResult",
    "FakePaymentGateway",
    "GatewayUnavailable",
    "LedgerEntry",
    "PaymentGateway",
    "PaymentRepository",
    "RefundPaymentConsumer",
    "RefundResult",
    "balance",
    "create_tables",
    "payments",
]
