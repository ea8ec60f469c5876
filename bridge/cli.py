"""The bridge's ``stepsaga`` commands: ``console``, ``orders show ID``, ``errors`` and
``dlq`` (:mod:`bridge.errorstore.cli`) (``contracts``
lives in :mod:`bridge.contracts.cli`). Registered through the ``stepsaga.cli``
entry-point group (core_saga does not import the bridge). Outside the console package, so
that the commands load without FastAPI (the ``console`` extra) until one serves."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console()
errors = Console(stderr=True)

orders_app = typer.Typer(name="orders", no_args_is_help=True,
                         help="Look at orders (saga instances) and their timelines.")

_KIND_STYLE = {"transition": "bold", "error": "red", "decision": "green",
               "handoff": "dark_orange", "supervisor": "magenta", "callback": "cyan",
               "compensation": "yellow", "retry": "yellow", "received": "dim",
               "operator": "bold blue"}


def _fail(message: str) -> typer.Exit:
    errors.print(Text.assemble(("error:", "red"), " ", message))
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


def _settings_problem(exc: Exception) -> str:
    """A settings error in one line per field, never with the values given (a token or
    a database password would end up on the screen and in logs)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
                         for e in exc.errors(include_input=False, include_url=False))
    return str(exc)


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

    from bridge.console._app import create_app
    from bridge.console._settings import ConsoleSettings
    from core_saga.logs import configure_logging
    from core_saga.persistence import redact_url
    from core_saga.telemetry import configure
    from core_saga.tracing import instrument_asgi

    overrides: dict[str, Any] = {}
    if database_url:
        overrides["database_url"] = database_url
    try:
        settings = ConsoleSettings(**overrides)
        if saga:
            settings.console_sagas = [*settings.console_sagas, *saga]
        app = create_app(settings)
    except (ValidationError, ValueError, ImportError, AttributeError) as exc:
        raise _fail(f"bad console settings: {_settings_problem(exc)}") from None
    if not settings.console_tokens:
        errors.print("[yellow]warning: no STEPSAGA_CONSOLE_TOKENS configured: nobody can "
                     "sign in[/yellow]")
    if settings.console_session_secret is None:
        errors.print("[yellow]note: no STEPSAGA_CONSOLE_SESSION_SECRET: sessions end when "
                     "the console restarts[/yellow]")
    try:
        configure_logging(log_level)  # STEPSAGA_LOG_FORMAT=json for JSON lines
        telemetry = configure(service_name="stepsaga-console", metrics=False)
    except ValueError as exc:
        raise _fail(f"bad telemetry settings: {exc}") from None
    instrument_asgi(app)
    errors.print(Text(f"console on http://{host}:{port}/ (database "
                      f"{redact_url(settings.database_url)})"))
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level.lower(),
                    proxy_headers=False, log_config=None)
    finally:
        telemetry.flush()


def safe_text(value: object) -> str:
    """`value` as one line a terminal shows as it is: control characters (escape
    sequences, bidi overrides, newlines) written out as ``\\xNN``. Print it in a
    :class:`rich.text.Text` (never as markup) so that ``[red]`` stays text."""
    text = str(value)
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256
                   else f"\\u{ord(c):04x}" for c in text)


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
    saga: Annotated[list[str] | None, typer.Option(
        "--saga", help="The saga class (package.module:Class): its final states and the "
                       "events it waits for in the status line")] = None,
) -> None:
    """Print an order's status in one line, then its timeline: transitions, messages,
    errors, hand-offs, reviews and the supervisor executions, in time order, and why it
    is where it is."""
    from bridge.audit import AuditLog
    from bridge.reviews import ReviewStore, StepFunctions
    from bridge.timeline import build_timeline
    from core_saga.persistence import redact_url, store_from_url

    where = redact_url(database_url)
    from bridge.actions.cli import saga_models

    models = {model.name: model for model in saga_models(saga or [])}

    async def load() -> Any:
        store = store_from_url(database_url, must_exist=True, schema=schema, pool_size=2)
        try:
            missing = await store.missing_tables()
            if missing:
                raise ValueError(f"the database {where} has no stepsaga tables "
                                 f"({', '.join(missing)} missing): is it the workers' "
                                 "database? (`stepsaga migrate` creates them)")
            reviews = ReviewStore.open(store)
            try:
                kinds = [saga_type] if saga_type else \
                    [i.saga_type for i in await store.instances_of(order_id)]
                model = next((models[k] for k in kinds if k in models),
                             next(iter(models.values())) if len(models) == 1 else None)
                return await build_timeline(store, order_id, saga_type=saga_type,
                                            model=model,
                                            sfn=StepFunctions() if aws else None,
                                            reviews=reviews, audit=AuditLog.open(store))
            finally:
                await reviews.close()
        finally:
            await store.close()

    try:
        timeline = asyncio.run(load())
    except (FileNotFoundError, ValueError, TypeError) as exc:
        raise _fail(f"{exc} (set --database-url or STEPSAGA_DATABASE_URL)") from None
    except Exception as exc:
        raise _fail(f"cannot read the database {where}: {type(exc).__name__}: "
                    f"{_first_line(exc)}") from None
    if timeline is None:
        raise _fail(f"no order {safe_text(order_id)!r} in {where}")
    if as_json:
        typer.echo(timeline.model_dump_json(indent=2))
        return
    console.print(Text.assemble(
        (safe_text(timeline.saga_type), "bold"), " ", (safe_text(timeline.correlation_id),
                                                      "cyan"),
        " is in ", (safe_text(timeline.state), "bold"),
        " (finished)" if timeline.finished else ""))
    if timeline.status:
        console.print(Text(f"status: {safe_text(timeline.status)}", style="bold"))
    for line in timeline.waiting_for:
        console.print(Text(f"  why: {safe_text(line)}", style="yellow"))
    table = Table(show_lines=False, header_style="bold")
    table.add_column("at (UTC)", no_wrap=True)
    table.add_column("kind")
    table.add_column("what")
    for entry in timeline.entries:
        table.add_row(entry.at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                      Text(entry.kind, style=_KIND_STYLE.get(entry.kind, "")),
                      Text(safe_text(entry.summary)))
    console.print(table)
    for link in timeline.executions:
        target = link.console_url or link.execution_arn
        console.print(Text.assemble(
            f"execution: {safe_text(target)}",
            f" ({safe_text(link.status)})" if link.status else "",
            (f" {safe_text(link.error)}", "red") if link.error else ""))
    for trace in timeline.trace_ids:
        console.print(Text(f"trace id: {trace}"))


def _register_actions(app: typer.Typer) -> None:
    from bridge.actions.cli import register as register_actions

    register_actions(app)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)  # a DBAPIError: never its statement and parameters
    return (str(orig or exc).strip().splitlines() or [""])[0][:300]


orders_app.command("show")(show)
_register_actions(orders_app)


def register(app: typer.Typer) -> None:
    """Add ``console``, ``orders``, ``errors`` and ``dlq`` to the ``stepsaga`` app."""
    from bridge.errorstore.cli import register as register_errors

    app.command("console")(serve)
    app.add_typer(orders_app, name="orders")
    register_errors(app)
