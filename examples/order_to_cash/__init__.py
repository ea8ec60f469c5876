"""The production-shaped Order-to-Cash reference app: the :class:`OrderSaga` and its
participant services, each a consumer on its own queue with its own tables.

- ``messages`` — every contract; ``saga`` — the saga; ``settings`` — its settings;
  ``supervision`` — what the saga hands to the ManualReview and SlowShipping workflows;
- ``orders``, ``payment``, ``inventory``, ``shipping`` — the services;
- ``app`` — wiring and the runnable entry point (``python -m examples.order_to_cash``).

docs/order_to_cash.md walks through every path.
"""

from .app import build_topology, build_worker, create_tables, host_services, order_service
from .saga import OrderSaga
from .settings import OrderSagaSettings
from .state import OrderState

__all__ = [
    "OrderSaga",
    "OrderSagaSettings",
    "OrderState",
    "build_topology",
    "build_worker",
    "create_tables",
    "host_services",
    "order_service",
]
