"""The inventory service's consumers: reserve and release, each idempotent per order."""

from __future__ import annotations

from core_saga import ConsumeContext, Consumer

from ..messages import (
    InventoryReleased,
    InventoryReserved,
    InventoryUnavailable,
    ReleaseInventory,
    ReserveInventory,
)
from .repository import (
    RELEASED,
    RESERVED,
    UNAVAILABLE,
    InventoryRepository,
    Reservation,
)


class ReserveInventoryConsumer(Consumer[ReserveInventory]):
    """Reserves every line of an order or none. The first command decides; a repeated
    one answers the same. An order whose release came first cannot reserve."""

    async def consume(self, ctx: ConsumeContext[ReserveInventory]) -> None:
        command = ctx.message
        repo = InventoryRepository(ctx.transaction)
        reservation = await repo.get_reservation(command.order_id)
        if reservation is None:
            reservation = await self._reserve(ctx, repo)
        if reservation.status == RESERVED:
            ctx.publish(InventoryReserved(order_id=command.order_id))
        elif reservation.status == UNAVAILABLE:
            ctx.publish(InventoryUnavailable(order_id=command.order_id,
                                             missing_skus=_missing_from(reservation.note),
                                             reason=reservation.note))
        else:  # released before it was reserved: the order is being canceled
            ctx.publish(InventoryUnavailable(order_id=command.order_id, missing_skus=(),
                                             reason="the order was released before it "
                                                    "reserved anything"))

    async def _reserve(self, ctx: ConsumeContext[ReserveInventory], repo: InventoryRepository
                       ) -> Reservation:
        command = ctx.message
        # Lock rows in one order (by sku) everywhere, so two orders cannot deadlock.
        lines = sorted(command.lines, key=lambda line: line.sku)
        taken, missing = [], []
        for line in lines:
            if await repo.take_stock(line.sku, line.quantity):
                taken.append(line)
            else:
                missing.append(line.sku)
        if missing:
            for line in taken:  # all or nothing
                await repo.return_stock(line.sku, line.quantity)
            status, note = UNAVAILABLE, f"not enough stock of {', '.join(missing)}"
        else:
            status, note = RESERVED, f"reserved {len(lines)} line(s)"
        reservation = Reservation(command.order_id, status, tuple(lines), note, ctx.now,
                                  ctx.now)
        await repo.add_reservation(reservation)
        return reservation


def _missing_from(note: str) -> tuple[str, ...]:
    prefix = "not enough stock of "
    return tuple(note[len(prefix):].split(", ")) if note.startswith(prefix) else ()


class ReleaseInventoryConsumer(Consumer[ReleaseInventory]):
    """Puts an order's reserved stock back, once. Releasing an order that holds nothing
    is a no-op that says so, and a release that arrives before the reservation leaves a
    marker so the late reservation is refused."""

    async def consume(self, ctx: ConsumeContext[ReleaseInventory]) -> None:
        order_id = ctx.message.order_id
        repo = InventoryRepository(ctx.transaction)
        reservation = await repo.get_reservation(order_id)
        if reservation is None:
            await repo.add_reservation(Reservation(
                order_id, RELEASED, (), "released before anything was reserved", ctx.now,
                ctx.now))
            released, note = False, "nothing was reserved for the order"
        elif reservation.status == RESERVED:
            for line in reservation.lines:
                await repo.return_stock(line.sku, line.quantity)
            note = f"released {len(reservation.lines)} line(s)"
            await repo.set_status(order_id, RELEASED, note, ctx.now)
            released = True
        elif reservation.status == RELEASED:
            released, note = False, "already released"
        else:
            released, note = False, "nothing was reserved (stock was unavailable)"
        ctx.publish(InventoryReleased(order_id=order_id, released=released, note=note))
