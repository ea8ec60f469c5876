"""The ``stepsaga`` script: the command line, or how to get it when it is not installed."""

from __future__ import annotations

import sys


def main() -> None:
    """Entry point of the ``stepsaga`` script."""
    try:
        from .cli import main as run
    except ModuleNotFoundError as exc:
        if exc.name not in ("typer", "rich", "click"):
            raise
        sys.stderr.write(f"stepsaga: the command line needs the 'cli' extra ({exc.name} is "
                         "not installed): pip install 'stepsaga[cli]'\n")
        raise SystemExit(2) from None
    run()
