"""Data access of the shipping service, in the message's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update

from core_saga import Transaction

from .tables import shipments

CREATED = "created"
VOIDED = "voided"
CANCELED = "canceled"


@dataclass(frozen=True)
class Shipment:
    """An order's shipment record."""

    order_id: str
    status: str
    tracking_id: str | None
    carrier: str | None
    note: str
    created_at: datetime
    updated_at: datetime


class ShippingRepository:
    """Shipments (table ``shipments``), seen from the transaction `tx`."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def get(self, order_id: str) -> Shipment | None:
        """The order's shipment, or None."""
        row = (await self.tx.execute(
            select(shipments).where(shipments.c.order_id == order_id))).first()
        return None if row is None else Shipment(
            row.order_id, row.status, row.tracking_id, row.carrier, row.note, row.created_at,
            row.updated_at)

    async def add(self, shipment: Shipment) -> None:
        """Insert; ``sqlalchemy.exc.IntegrityError`` (rolling the message back) if the
        order has a shipment already."""
        await self.tx.execute(insert(shipments).values(
            order_id=shipment.order_id, status=shipment.status,
            tracking_id=shipment.tracking_id, carrier=shipment.carrier, note=shipment.note,
            created_at=shipment.created_at, updated_at=shipment.updated_at))

    async def set_status(self, order_id: str, status: str, note: str, at: datetime) -> None:
        """Change the shipment's status and note."""
        await self.tx.execute(update(shipments).where(shipments.c.order_id == order_id)
                              .values(status=status, note=note, updated_at=at))
