"""The inventory service: stock levels and per-order reservations in its own tables
(``stock``, ``reservations``, ``reservation_lines``); reserve and release are idempotent
per order and never oversell. Hosted on the ``inventory`` queue."""

from .consumers import ReleaseInventoryConsumer, ReserveInventoryConsumer
from .repository import (
    RELEASED,
    RESERVED,
    UNAVAILABLE,
    InventoryRepository,
    Reservation,
)
from .stock import reservation_of, set_stock_levels, stock_levels
from .tables import create_tables, reservation_lines, reservations, stock

__all__ = [
    "RELEASED",
    "RESERVED",
    "UNAVAILABLE",
    "InventoryRepository",
    "ReleaseInventoryConsumer",
    "Reservation",
    "ReserveInventoryConsumer",
    "create_tables",
    "reservation_lines",
    "reservation_of",
    "reservations",
    "set_stock_levels",
    "stock",
    "stock_levels",
]
