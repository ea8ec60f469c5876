"""Stock administration outside the message flow: receiving goods, reading levels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from core_saga.persistence import SagaStore

from .repository import InventoryRepository, Reservation


async def set_stock_levels(store: SagaStore, levels: Mapping[str, int]) -> None:
    """Set the units available of each article (goods received, a stock count)."""
    for sku, available in levels.items():
        if available < 0:
            raise ValueError(f"stock of {sku!r} must be 0 or more, not {available}")
    async with store.transaction() as tx:
        repo = InventoryRepository(tx)
        for sku, available in levels.items():
            await repo.set_stock(sku, available)


async def stock_levels(store: SagaStore, skus: Iterable[str]) -> dict[str, int | None]:
    """Units available of each article (None: unknown article)."""
    async with store.transaction() as tx:
        repo = InventoryRepository(tx)
        return {sku: await repo.available(sku) for sku in skus}


async def reservation_of(store: SagaStore, order_id: str) -> Reservation | None:
    """The order's reservation, if it has one."""
    async with store.transaction() as tx:
        return await InventoryRepository(tx).get_reservation(order_id)
