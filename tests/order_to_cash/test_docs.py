"""docs/order_to_cash.md shows the saga's graph as the graph export draws it."""

from __future__ import annotations

import re
from pathlib import Path

from core_saga import to_mermaid
from examples.order_to_cash import OrderSaga

DOC = Path(__file__).resolve().parents[2] / "docs" / "order_to_cash.md"


def test_the_documented_graph_is_the_generated_one() -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```mermaid\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, f"{DOC} has no mermaid block"
    assert blocks[0] == to_mermaid(OrderSaga.model), (
        f"{DOC} shows an old graph of OrderSaga: replace its mermaid block with the output "
        "of `stepsaga graph examples.order_to_cash.saga:OrderSaga`")


def test_the_doc_walks_through_every_path() -> None:
    text = DOC.read_text(encoding="utf-8")
    for heading in ("Happy path", "Payment declined", "Inventory missing after payment",
                    "Shipping provider down", "Manual review", "Shipping supervision",
                    "Duplicates and out-of-order events", "Exactly once in effect"):
        assert f"### {heading}" in text or f"## {heading}" in text, heading


def test_the_storage_excerpts_are_the_code() -> None:
    """Each Python block of the storage section names its file on its first line and
    shows lines of it verbatim."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Storage"):]
    section = section[:section.index("\n## ", 1)]
    blocks = re.findall(r"```python\n# (\S+)\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) >= 3, "the storage section lost its excerpts"
    root = DOC.parents[1]
    for path, excerpt in blocks:
        source = (root / path).read_text(encoding="utf-8")
        assert excerpt in source, (
            f"{DOC.name}: the excerpt of {path} is not in it any more; copy it again:\n"
            f"{excerpt}")


def test_the_documented_entry_points_are_the_app_s() -> None:
    """The worker factory the docs name (here and in docs/deploy.md's walkthrough) is the
    app's, and the services `--services` picks among are the app's."""
    from core_saga.cli import load_object
    from examples.order_to_cash import app

    deploy = (DOC.parent / "deploy.md").read_text(encoding="utf-8")
    text = DOC.read_text(encoding="utf-8")
    named = {m for doc in (text, deploy) for m in re.findall(r"stepsaga worker (\S+:\w+)", doc)}
    assert named == {"examples.order_to_cash.app:worker"}
    assert load_object(named.pop()) is app.worker
    sentence = text[text.index("`--services` picks among"):][:200]
    assert set(re.findall(r"`(\w+)`", sentence)) == set(app.APP_SERVICES)
