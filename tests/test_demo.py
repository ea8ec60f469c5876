"""`make demo` runs this: every path of the quickstart saga over SQS and SQLite."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from examples.quickstart.demo import demo_orders, run_demo


async def test_demo_walks_every_path_and_the_ledger_balances(tmp_path: Path) -> None:
    output = Console(record=True, width=140)
    assert await run_demo(workdir=tmp_path, happy=3, each_failure=1, console=output)
    text = output.export_text()
    assert "counts: {'Completed': 3, 'Failed': 3}; error store: 0; outbox pending: 0" in text
    assert "every order is terminal and the ledger balances" in text
    assert (tmp_path / "demo.db").exists()


def test_demo_orders_cover_every_path() -> None:
    paths = {o.path for o in demo_orders(1, 1)}
    assert paths == {"completed", "payment declined", "inventory missing", "carrier down"}
