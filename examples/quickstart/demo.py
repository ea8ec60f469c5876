"""The demo: the article's Order-to-Cash saga and its services over SQS on the local
emulator, with SQLite as the database. It walks every path — completed, payment
declined, inventory missing after payment (refund), carrier down past the deadline
(timeout, refund) — shows live progress, and checks the ledger at the end."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table
from sqlalchemy import select

from core_saga import Envelope, Worker, WorkerSettings
from core_saga.emulator import patched_environ, start_emulator
from core_saga.persistence import SqlStore
from core_saga.transports import SqsTransport, TransportMessage

from .article_saga import ArticleOrderSaga, ArticleSettings, OrderSubmitted
from .services import DECLINED, QUEUES, host_services, ledger, metadata

TERMINAL = ("Completed", "Failed")


@dataclass(frozen=True)
class DemoOrder:
    order_id: str
    amount: Decimal
    path: str


def demo_orders(happy: int = 12, each_failure: int = 2) -> list[DemoOrder]:
    """A mix of orders that walks every path."""
    orders = [DemoOrder(f"order-{i:03d}", Decimal("25.00") + i, "completed")
              for i in range(happy)]
    for i in range(each_failure):
        orders.append(DemoOrder(f"declined-{i}", DECLINED, "payment declined"))
        orders.append(DemoOrder(f"nostock-{i}-404", Decimal("40.00"), "inventory missing"))
        orders.append(DemoOrder(f"carrier-{i}-503", Decimal("50.00"), "carrier down"))
    return orders


def _fresh_workdir(workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    for leftover in workdir.glob("demo.db*"):
        leftover.unlink()
    return workdir / "demo.db"


def _table(counts: dict[str, int], total: int, elapsed: float) -> Table:
    table = Table(title=f"Order-to-Cash on SQS + SQLite — {elapsed:4.1f} s")
    table.add_column("state")
    table.add_column("orders", justify="right")
    for state in ("PaymentPending", "InventoryPending", "ShippingPending", *TERMINAL):
        table.add_row(state, str(counts.get(state, 0)))
    done = sum(counts.get(s, 0) for s in TERMINAL)
    table.caption = f"{done}/{total} orders terminal"
    return table


async def run_demo(*, workdir: Path = Path(".stepsaga"), happy: int = 12,
                   each_failure: int = 2, shipment_timeout: timedelta = timedelta(seconds=4),
                   timeout: float = 90.0, console: Console | None = None) -> bool:
    """Run the demo; True when every order ended as its path says and the ledger
    balances."""
    console = console or Console()
    database = await asyncio.to_thread(_fresh_workdir, workdir)
    console.print("[bold]stepsaga demo[/bold]: starting the local AWS emulator…")
    # Fake credentials and the emulator's endpoint for the run only: nothing reaches AWS,
    # and the caller's environment is as it was afterwards.
    with start_emulator(log_file=workdir / "emulator.log") as aws, \
            patched_environ(aws.env()):
        for queue in QUEUES:
            aws.create_queue(queue)
        settings = WorkerSettings(database_url=f"sqlite+aiosqlite:///{database}",
                                  aws_endpoint_url=aws.endpoint_url, wait_time_seconds=1,
                                  outbox_poll_seconds=0.2)
        store = SqlStore.from_url(settings.database_url)
        await store.create_schema()
        async with store.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        transport = await SqsTransport.connect(settings.sqs())
        worker = host_services(Worker(settings, store=store, transport=transport),
                               ArticleSettings(shipment_timeout=shipment_timeout))
        running = asyncio.create_task(worker.run(install_signal_handlers=False))
        orders = demo_orders(happy, each_failure)
        console.print(f"emulator at {aws.endpoint_url}, database {database}; "
                      f"submitting {len(orders)} orders")
        for start in range(0, len(orders), 10):
            batch = [Envelope(OrderSubmitted(order_id=o.order_id, amount=o.amount))
                     for o in orders[start:start + 10]]
            await transport.send_batch("article-order-saga", [
                TransportMessage(e.encode(), e.message_id, e.message_type) for e in batch])
        started = time.monotonic()
        with Live(console=console, refresh_per_second=4) as live:
            while True:
                counts = await store.count_instances(ArticleOrderSaga.model.name)
                live.update(_table(counts, len(orders), time.monotonic() - started))
                if (sum(counts.get(s, 0) for s in TERMINAL) == len(orders)
                        and await _settled(store, orders)):
                    break  # every saga ended and every compensation has landed
                if time.monotonic() - started > timeout:
                    break
                await asyncio.sleep(0.25)
        worker.request_stop()
        await running
        ok = await _report(console, store, orders)
        await transport.close()
        await store.close()
    return ok


async def _net_charges(store: SqlStore) -> dict[str, Decimal]:
    """Charged minus refunded, per order, from the payment service's ledger."""
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(ledger.c.order_id, ledger.c.kind,
                                          ledger.c.amount))).all()
    money: dict[str, Decimal] = {}
    for order_id, kind, amount in rows:
        if kind == "charge":
            money[order_id] = money.get(order_id, Decimal(0)) + amount
        elif kind == "refund":
            money[order_id] = money.get(order_id, Decimal(0)) - amount
    return money


async def _settled(store: SqlStore, orders: list[DemoOrder]) -> bool:
    """No failed order still holds money (its refund may trail its Failed state)."""
    money = await _net_charges(store)
    for order in orders:
        instance = await store.get_instance(ArticleOrderSaga.model.name, order.order_id)
        if instance is not None and instance.state == "Failed" and money.get(order.order_id):
            return False
    return True


async def _report(console: Console, store: SqlStore, orders: list[DemoOrder]) -> bool:
    money = await _net_charges(store)
    table = Table(title="Outcomes")
    for column in ("order", "path", "state", "transitions", "charged − refunded", "check"):
        table.add_column(column)
    expected = {"completed": "Completed", "payment declined": "Failed",
                "inventory missing": "Failed", "carrier down": "Failed"}
    all_ok = True
    for order in orders:
        instance = await store.get_instance(ArticleOrderSaga.model.name, order.order_id)
        state = instance.state if instance else "missing"
        steps = str(len(await store.history(ArticleOrderSaga.model.name, order.order_id)))
        net = money.get(order.order_id, Decimal(0))
        balanced = net == (order.amount if state == "Completed" else Decimal(0))
        ok = state == expected[order.path] and balanced
        all_ok &= ok
        table.add_row(order.order_id, order.path, state, steps, f"{net:.2f}",
                      "[green]ok[/green]" if ok else "[red]WRONG[/red]")
    console.print(table)
    counts = await store.count_instances(ArticleOrderSaga.model.name)
    errors = await store.list_errors()
    console.print(f"counts: {dict(sorted(counts.items()))}; error store: {len(errors)}; "
                  f"outbox pending: {len(await store.pending_outbox())}")
    console.print("[bold green]every order is terminal and the ledger balances[/bold green]"
                  if all_ok else "[bold red]some orders did not end as expected[/bold red]")
    return all_ok
