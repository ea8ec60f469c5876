"""Registers ``stepsaga quickstart`` (entry point group ``stepsaga.cli``): the reference
article's saga in its smallest form, over SQS on the emulator. ``stepsaga demo`` is the
full Order-to-Cash app's."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the quickstart command to the stepsaga CLI."""

    @app.command("quickstart")
    def quickstart(
        workdir: Annotated[Path, typer.Option(help="Where the demo keeps its files")] = Path(
            ".stepsaga"),
        orders: Annotated[int, typer.Option(help="Orders on the happy path")] = 12,
        failures: Annotated[int, typer.Option(help="Orders on each failure path")] = 2,
    ) -> None:
        """Run the article's saga (quickstart) on SQLite and the local AWS emulator."""
        from .demo import run_demo

        if orders < 0 or failures < 0:
            raise typer.BadParameter("--orders and --failures must be 0 or more")
        ok = asyncio.run(run_demo(workdir=workdir, happy=orders, each_failure=failures))
        raise typer.Exit(0 if ok else 1)
