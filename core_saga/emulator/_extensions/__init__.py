"""Extensions to moto 5.2.5, applied inside the emulator's server process.

Each module fills one gap, says which in its docstring, and has a smoke test in
tests/emulator so a moto upgrade shows at once what broke. moto is pinned exactly.
"""

from __future__ import annotations

import importlib

EXTENSIONS: tuple[str, ...] = ()
"""Modules (relative to this package) applied at server start, in order."""


def apply_all() -> None:
    """Import and apply every extension."""
    for name in EXTENSIONS:
        module = importlib.import_module(f"{__name__}.{name}")
        module.apply()
