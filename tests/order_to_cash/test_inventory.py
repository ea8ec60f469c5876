"""The inventory service alone: reserve and release idempotent per order, all or
nothing, and never oversold under concurrency."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from core_saga import Envelope, VirtualClock
from core_saga.extension import ConsumerHandler, Endpoint
from core_saga.persistence import SagaStore
from core_saga.testing import SagaTestHarness
from examples.order_to_cash import create_tables, host_services
from examples.order_to_cash.inventory import (
    RELEASED,
    RESERVED,
    ReserveInventoryConsumer,
    reservation_of,
    set_stock_levels,
    stock_levels,
)
from examples.order_to_cash.messages import (
    InventoryReleased,
    InventoryReserved,
    InventoryUnavailable,
    ReleaseInventory,
    ReserveInventory,
    StockLine,
)
from examples.order_to_cash.queues import INVENTORY_QUEUE


def reserve(order_id: str, *lines: tuple[str, int]) -> ReserveInventory:
    return ReserveInventory(order_id=order_id,
                            lines=tuple(StockLine(sku=s, quantity=q) for s, q in lines))


async def inventory_service(store: SagaStore, stock: dict[str, int]) -> SagaTestHarness:
    h = SagaTestHarness(store=store)
    await create_tables(store)
    host_services(h, services=["inventory"])
    await set_stock_levels(store, stock)
    return h


async def test_reserve_and_release_take_effect_once_per_order(store: SagaStore) -> None:
    h = await inventory_service(store, {"BOOK-1": 10, "MUG-1": 5})
    for _ in range(3):
        await h.send(INVENTORY_QUEUE, reserve("o-1", ("BOOK-1", 2), ("MUG-1", 1)))
    assert len(h.published(InventoryReserved)) == 3
    assert await stock_levels(store, ["BOOK-1", "MUG-1"]) == {"BOOK-1": 8, "MUG-1": 4}
    for _ in range(3):
        await h.send(INVENTORY_QUEUE, ReleaseInventory(order_id="o-1"))
    assert [(r.released, r.note) for r in h.published(InventoryReleased)] == [
        (True, "released 2 line(s)"), (False, "already released"),
        (False, "already released")]
    assert await stock_levels(store, ["BOOK-1", "MUG-1"]) == {"BOOK-1": 10, "MUG-1": 5}
    reservation = await reservation_of(store, "o-1")
    assert reservation is not None and reservation.status == RELEASED


async def test_an_order_reserves_all_its_lines_or_none(store: SagaStore) -> None:
    h = await inventory_service(store, {"BOOK-1": 10, "MUG-1": 1})
    await h.send(INVENTORY_QUEUE, reserve("o-1", ("BOOK-1", 2), ("MUG-1", 3), ("NOPE-1", 1)))
    assert h.published(InventoryUnavailable) == [InventoryUnavailable(
        order_id="o-1", missing_skus=("MUG-1", "NOPE-1"),
        reason="not enough stock of MUG-1, NOPE-1")]
    assert await stock_levels(store, ["BOOK-1", "MUG-1"]) == {"BOOK-1": 10, "MUG-1": 1}
    await h.send(INVENTORY_QUEUE, ReleaseInventory(order_id="o-1"))
    assert h.published(InventoryReleased)[0].released is False


async def test_a_release_that_comes_first_blocks_the_late_reservation(store: SagaStore) -> None:
    h = await inventory_service(store, {"BOOK-1": 10})
    await h.send(INVENTORY_QUEUE, ReleaseInventory(order_id="o-1"))
    assert h.published(InventoryReleased) == [InventoryReleased(
        order_id="o-1", released=False, note="nothing was reserved for the order")]
    await h.send(INVENTORY_QUEUE, reserve("o-1", ("BOOK-1", 2)))
    assert h.published(InventoryReserved) == []
    assert len(h.published(InventoryUnavailable)) == 1
    assert await stock_levels(store, ["BOOK-1"]) == {"BOOK-1": 10}


async def _race(store: SagaStore, orders: list[ReserveInventory]) -> None:
    """Every command in its own transaction, all at once (a pool of connections on
    PostgreSQL; SQLite and memory serialise them)."""
    endpoint = Endpoint(INVENTORY_QUEUE, [ConsumerHandler(ReserveInventoryConsumer())],
                        store=store, clock=VirtualClock(), routes=lambda _urn: (),
                        lease=timedelta(seconds=60))
    await asyncio.gather(*(endpoint.process(Envelope(order)) for order in orders))


async def test_twenty_concurrent_orders_for_the_last_five_units_reserve_exactly_five(
        store: SagaStore) -> None:
    await inventory_service(store, {"LAMP-1": 5})
    await _race(store, [reserve(f"o-{i}", ("LAMP-1", 1)) for i in range(20)])
    statuses = [(await reservation_of(store, f"o-{i}")) for i in range(20)]
    assert sum(1 for r in statuses if r is not None and r.status == RESERVED) == 5
    assert await stock_levels(store, ["LAMP-1"]) == {"LAMP-1": 0}


async def test_concurrent_orders_naming_articles_in_any_order_never_oversell(
        store: SagaStore) -> None:
    await inventory_service(store, {"A-1": 5, "B-1": 7})
    orders = [reserve(f"o-{i}", ("A-1", 1), ("B-1", 1)) if i % 2
              else reserve(f"o-{i}", ("B-1", 1), ("A-1", 1)) for i in range(20)]
    await _race(store, orders)
    reserved = [r for i in range(20)
                if (r := await reservation_of(store, f"o-{i}")) and r.status == RESERVED]
    assert len(reserved) == 5
    assert await stock_levels(store, ["A-1", "B-1"]) == {"A-1": 0, "B-1": 2}
