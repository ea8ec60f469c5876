"""The bridge's ``stepsaga`` commands: ``console`` and ``orders show ID`` (``contracts``
lives in :mod:`bridge.contracts.cli`). Registered through the ``stepsaga.cli``
entry-point group (core_saga does not import the bridge)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
errors = Console(stderr=True)

orders_app = typer.Typer(name="orders", no_args_is_help=True,
                         help="Look at orders (saga instances) and their timelines.")

_KIND_STYLE = {"transition": "bold", "error": "red", "decision": "green",
               "handoff": "dark_orange", "supervisor": "magenta", "callback": "cyan",
               "compensation": "yellow", "retry": "yellow", "received": "dim"}


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


def _tokens(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--tokens must be JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise typer.BadParameter('--tokens must be a JSON object: {"token": "approver"}')
    return parsed


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port")] = 8080,
    database_url: Annotated[str | None, typer.Option(
        envvar="STEPSAGA_DATABASE_URL", help="The saga database")] = None,
    saga: Annotated[list[str] | None, typer.Option(
        help="A saga class (package.module:Class) whose graph to draw; repeatable")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve the ops console (STEPSAGA_* settings, tokens in STEPSAGA_CONSOLE_TOKENS)."""
    import uvicorn
    from pydantic import ValidationError

    from ._app import create_app
    from ._settings import ConsoleSettings

    overrides: dict[str, Any] = {}
    if database_url:
        overrides["database_url"] = database_url
    try:
        settings = ConsoleSettings(**overrides)
        if saga:
            settings.console_sagas = [*settings.console_sagas, *saga]
        app = create_app(settings)
    except (ValidationError, ValueError, ImportError, AttributeError) as exc:
        raise _fail(f"bad console settings: {exc}") from None
    if not settings.console_tokens:
        errors.print("[yellow]warning: no STEPSAGA_CONSOLE_TOKENS configured: nobody can "
                     "sign in[/yellow]")
    errors.print(f"console on http://{host}:{port}/ (database {settings.database_url})")
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower())


def show(
    order_id: Annotated[str, typer.Argument(help="The order's correlation id")],
    database_url: Annotated[str, typer.Option(
        envvar="STEPSAGA_DATABASE_URL", help="The saga database")
    ] = "sqlite+aiosqlite:///stepsaga.db",
    schema: Annotated[str | None, typer.Option(
        envvar="STEPSAGA_DATABASE_SCHEMA", help="PostgreSQL schema")] = None,
    saga_type: Annotated[str | None, typer.Option(help="The saga type, if several")] = None,
    aws: Annotated[bool, typer.Option(
        help="Read the supervisor executions from Step Functions (STEPSAGA_AWS_*)")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Print an order's timeline: transitions, messages, errors, hand-offs, reviews and
    the supervisor executions, in time order."""
    from bridge.reviews import ReviewStore, StepFunctions
    from bridge.timeline import SagaDatabase, build_timeline

    if database_url.startswith("sqlite") and ":///" in database_url:
        path = database_url.split(":///", 1)[1]
        if path and path != ":memory:" and not Path(path).exists():
            raise _fail(f"no database at {path} (set --database-url or "
                        "STEPSAGA_DATABASE_URL)")

    async def load() -> Any:
        db = SagaDatabase.open(database_url, schema=schema)
        reviews = ReviewStore.open(database_url, schema=schema)
        try:
            return await build_timeline(db, order_id, saga_type=saga_type,
                                        sfn=StepFunctions() if aws else None,
                                        reviews=reviews)
        finally:
            await db.close()
            await reviews.close()

    try:
        timeline = asyncio.run(load())
    except ValueError as exc:
        raise _fail(str(exc)) from None
    except Exception as exc:
        raise _fail(f"cannot read the database: {type(exc).__name__}: {exc}") from None
    if timeline is None:
        raise _fail(f"no order {order_id!r} in {database_url.split('@')[-1]}")
    if as_json:
        typer.echo(timeline.model_dump_json(indent=2))
        return
    console.print(f"[bold]{timeline.saga_type}[/bold] [cyan]{timeline.correlation_id}[/cyan]"
                  f" is in [bold]{timeline.state}[/bold]"
                  + (" (finished)" if timeline.finished else ""))
    table = Table(show_lines=False, header_style="bold")
    table.add_column("at (UTC)", no_wrap=True)
    table.add_column("kind")
    table.add_column("what")
    for entry in timeline.entries:
        style = _KIND_STYLE.get(entry.kind, "")
        table.add_row(entry.at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                      f"[{style}]{entry.kind}[/{style}]" if style else entry.kind,
                      entry.summary)
    console.print(table)
    for link in timeline.executions:
        where = link.console_url or link.execution_arn
        console.print(f"execution: {where}" + (f" ({link.status})" if link.status else "")
                      + (f" [red]{link.error}[/red]" if link.error else ""))
    for trace in timeline.trace_ids:
        console.print(f"trace id: {trace}")


orders_app.command("show")(show)


def register(app: typer.Typer) -> None:
    """Add ``console`` and ``orders`` to the ``stepsaga`` app."""
    app.command("console")(serve)
    app.add_typer(orders_app, name="orders")
