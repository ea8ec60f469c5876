"""The order service: validates and stores orders (tables ``orders``, ``order_lines``),
publishes ``OrderSubmitted`` in the same transaction, serves ``POST /orders`` and
``GET /orders/{id}``, and records the saga's verdict from the ``orders`` queue."""

from .api import create_app, field_path
from .consumers import OrderCanceledConsumer, OrderCompletedConsumer
from .models import MINOR_UNITS, OrderLineRequest, OrderRequest, OrderView, SubmitResponse
from .repository import (
    CANCELED,
    COMPLETED,
    SUBMITTED,
    OrderRecord,
    OrderRepository,
)
from .service import IdempotencyKeyReused, OrderService, Submission
from .tables import create_tables, order_lines, orders

__all__ = [
    "CANCELED",
    "COMPLETED",
    "MINOR_UNITS",
    "SUBMITTED",
    "IdempotencyKeyReused",
    "OrderCanceledConsumer",
    "OrderCompletedConsumer",
    "OrderLineRequest",
    "OrderRecord",
    "OrderRepository",
    "OrderRequest",
    "OrderService",
    "OrderView",
    "Submission",
    "SubmitResponse",
    "create_app",
    "create_tables",
    "field_path",
    "order_lines",
    "orders",
]
