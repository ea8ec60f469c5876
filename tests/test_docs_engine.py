"""The Python examples of docs/engine.md run, in order, as a reader would paste them."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from core_saga.persistence import SqlStore

DOC = Path(__file__).resolve().parent.parent / "docs" / "engine.md"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every ```python block."""
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
        blocks.append((text.count("\n", 0, match.start()) + 2, match.group(1)))
    return blocks


async def test_every_python_example_in_engine_md_runs(tmp_path: Path) -> None:
    namespace: dict[str, Any] = {"__name__": "docs_engine", "workdir": tmp_path,
                                 "SqlStore": SqlStore}
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 3
    for line, code in blocks:
        compiled = compile(code, f"{DOC}:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                           dont_inherit=True)
        result = eval(compiled, namespace)
        if result is not None:
            await result
