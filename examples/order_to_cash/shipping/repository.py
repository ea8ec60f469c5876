"""Data access of the shipping service, in the message's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update

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


# Built once: a statement object is compiled once per store and its cache key computed
# once, so each message pays only for binding its values.
_GET = select(shipments).where(shipments.c.order_id == bindparam("order_id"))
_ADD = insert(shipments)
_SET_STATUS = (update(shipments).where(shipments.c.order_id == bindparam("w_order_id"))
               .values(status=bindparam("status"), note=bindparam("note"),
                       updated_at=bindparam("updated_at")))


class ShippingRepository:
    """Shipments (table ``shipments``), seen from the transaction `tx`."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def get(self, order_id: str) -> Shipment | None:
        """The order's shipment, or None."""
        row = (await self.tx.execute(_GET, {"order_id": order_id})).first()
        return None if row is None else Shipment(
            row.order_id, row.status, row.tracking_id, row.carrier, row.note, row.created_at,
            row.updated_at)

    async def add(self, shipment: Shipment) -> None:
        """Insert; ``sqlalchemy.exc.IntegrityError`` (rolling the message back) if the
        order has a shipment already."""
        await self.tx.execute(_ADD, {
            "order_id": shipment.order_id, "status": shipment.status,
            "tracking_id": shipment.tracking_id, "carrier": shipment.carrier,
            "note": shipment.note, "created_at": shipment.created_at,
            "updated_at": shipment.updated_at})

    async def set_status(self, order_id: str, status: str, note: str, at: datetime) -> None:
        """Change the shipment's status and note."""
        await self.tx.execute(_SET_STATUS, {"w_order_id": order_id, "status": status,
                                            "note": note, "updated_at": at})
