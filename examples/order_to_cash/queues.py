"""The logical queue names of the Order-to-Cash app (a stage prefix is added by
``WorkerSettings.queue_prefix``)."""

from __future__ import annotations

ORDER_SAGA_QUEUE = "order-saga"
"""The saga's queue: the events it reacts to and its own timers."""
ORDERS_QUEUE = "orders"
"""The order service: the saga's verdicts (OrderCompleted, OrderCanceled)."""
PAYMENT_QUEUE = "payment"
"""The payment service: ChargePayment, RefundPayment."""
INVENTORY_QUEUE = "inventory"
"""The inventory service: ReserveInventory, ReleaseInventory."""
SHIPPING_QUEUE = "shipping"
"""The shipping service: CreateShipment, CancelShipment."""
REVIEW_QUEUE = "review"
"""Where the ManualReview workflow puts review tasks for people (the ops console's
review consumer reads it)."""

ALL_QUEUES = (ORDER_SAGA_QUEUE, ORDERS_QUEUE, PAYMENT_QUEUE, INVENTORY_QUEUE,
              SHIPPING_QUEUE, REVIEW_QUEUE)
"""Every queue the app uses, in the order a deployment creates them."""
