"""Registers ``stepsaga demo`` (entry point group ``stepsaga.cli``): the Order-to-Cash
demo of :mod:`examples.order_to_cash.demo`. Kept light: the demo is imported only when
the command runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from core_saga import run_async

_HELP = (
    "Run the Order-to-Cash demo on SQLite and the local AWS emulator.\n\n"
    "The saga, its services, the bridge to Step Functions and the ops console, with orders "
    "on every path: happy, payment declined, inventory missing, carrier down past the "
    "deadline, manual review approved / rejected / timed out, slow shipping recovered / "
    "failed. Exits 1 when an order does not end as planned or the books do not balance.")


def register(app: typer.Typer) -> None:
    """Add the demo command to the stepsaga CLI."""

    @app.command(help=_HELP)
    def demo(
        orders: Annotated[int, typer.Option(
            min=0, max=1000, help="Orders on the happy path (one more on each other path)")
        ] = 10,
        console_port: Annotated[int | None, typer.Option(
            min=0, max=65535, show_default="8080 if free, else any free port",
            help="Port of the ops console; 0: any free port")] = None,
        console_host: Annotated[str, typer.Option(
            help="Interface the ops console listens on")] = "127.0.0.1",
        console_token: Annotated[str | None, typer.Option(
            envvar="STEPSAGA_DEMO_TOKEN", show_default="a random one, printed",
            help="Bearer token (approver) to sign in to the console; 8+ characters")] = None,
        keep_running: Annotated[bool, typer.Option(
            "--keep-running", help="Leave the console and the worker up after the report, "
                                   "until Ctrl-C")] = False,
        workdir: Annotated[Path, typer.Option(
            file_okay=False, help="Where the SQLite database and the logs go (emptied of "
                                  "the previous run's)")] = Path(".stepsaga"),
        timeout: Annotated[float, typer.Option(
            min=5, help="Seconds to wait for every order to end")] = 100.0,
    ) -> None:
        """Run the Order-to-Cash demo on SQLite and the local AWS emulator."""
        from .demo import DemoError, DemoOptions, run_demo

        errors = Console(stderr=True)
        if console_token is not None and len(console_token) < 8:
            raise typer.BadParameter("the console token must be 8 characters or more",
                                     param_hint="--console-token")
        options = DemoOptions(workdir=workdir, happy=orders, console_host=console_host,
                              console_port=console_port, console_token=console_token,
                              keep_running=keep_running, timeout=timeout)
        from core_saga.telemetry import configure

        try:
            # spans over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set; metrics in process
            telemetry = configure(service_name=os.environ.get("OTEL_SERVICE_NAME")
                                  or "stepsaga-demo")
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        try:
            result = run_async(run_demo(options, handle_signals=True))  # uvloop if installed
        except DemoError as exc:
            errors.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            errors.print("interrupted")
            raise typer.Exit(130) from None
        finally:
            telemetry.flush()
        raise typer.Exit(0 if result.ok else 1)
