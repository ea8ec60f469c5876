"""docs/engine.md's Python examples run, in order, as a reader would paste them."""

from __future__ import annotations

import ast
import re
import sys
import types
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "engine.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_doc_has_its_examples() -> None:
    text = "".join(_blocks())
    for feature in ("CompositeEvent(", "ignore_others()", "configure=as_reply",
                    "async def reserve_flight", "SagaTestHarness"):
        assert feature in text, feature


async def test_every_python_example_in_the_engine_doc_runs() -> None:
    # A real module, so that pydantic resolves the examples' annotations.
    module = types.ModuleType("docs_engine")
    sys.modules[module.__name__] = module
    try:
        for number, block in enumerate(_blocks(), start=1):
            code = compile(block, f"{DOC.name} example {number}", "exec",
                           flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(code, module.__dict__)
            if result is not None:
                await result  # it awaits at top level, as in the asyncio REPL
    finally:
        del sys.modules[module.__name__]


def test_the_envelope_shown_is_one_a_worker_reads() -> None:
    from core_saga.extension import decode_envelope

    [example] = re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"),
                           flags=re.DOTALL)
    module = types.ModuleType("docs_engine")  # the name the other test defines them under
    sys.modules[module.__name__] = module
    try:
        for block in _blocks():  # defines the message classes the envelope names
            if "class ReserveStock(" in block:
                exec(compile(block, DOC.name, "exec"), module.__dict__)
        envelope = decode_envelope(example.encode())
    finally:
        del sys.modules[module.__name__]
    assert envelope.message_type == "urn:message:docs.shop:ReserveStock:v1"
    assert envelope.correlation_id == "o-1" and envelope.message.quantity == 2
