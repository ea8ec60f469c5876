"""The shipping service: labels through a carrier interface, at most one shipment per
order (table ``shipments``). Hosted on the ``shipping`` queue."""

from .carrier import Carrier, CarrierUnavailable, FakeCarrier, Label
from .consumers import CancelShipmentConsumer, CreateShipmentConsumer
from .repository import (
    CANCELED,
    CREATED,
    VOIDED,
    Shipment,
    ShippingRepository,
)
from .tables import create_tables, shipments

__all__ = [
    "CANCELED",
    "CREATED",
    "VOIDED",
    "CancelShipmentConsumer",
    "Carrier",
    "CarrierUnavailable",
    "CreateShipmentConsumer",
    "FakeCarrier",
    "Label",
    "Shipment",
    "ShippingRepository",
    "create_tables",
    "shipments",
]
