"""The ``stepsaga`` command line. Core commands live here; packages add their own
(``demo``, ``console``, ``contracts``…) through the ``stepsaga.cli`` entry-point group:
each entry point names a function that takes the Typer app and registers commands."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Annotated, Any

import typer
from rich.console import Console

from ._graph import to_dot, to_mermaid
from ._saga import Saga

app = typer.Typer(name="stepsaga", no_args_is_help=True, add_completion=False,
                  help="stepsaga: code-first sagas on SQS, Step Functions for the slow cases.")
console = Console(stderr=True)


def load_object(path: str) -> Any:
    """Import ``package.module:attribute``; BadParameter naming what was missing."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise typer.BadParameter(f"{path!r} is not of the form package.module:Name")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise typer.BadParameter(f"cannot import {module_name!r}: {exc}") from exc
    try:
        return getattr(module, attribute)
    except AttributeError as exc:
        raise typer.BadParameter(f"{module_name!r} has no {attribute!r}") from exc


@app.command()
def graph(
    saga: Annotated[str, typer.Argument(help="The saga class, as package.module:ClassName")],
    format: Annotated[str, typer.Option("--format", "-f", help="mermaid or dot")] = "mermaid",
    highlight: Annotated[str | None, typer.Option(help="A state to highlight")] = None,
) -> None:
    """Print a saga's state graph as Mermaid or Graphviz DOT."""
    cls = load_object(saga)
    if not (isinstance(cls, type) and issubclass(cls, Saga) and hasattr(cls, "model")):
        raise typer.BadParameter(f"{saga!r} is not a saga class")
    if format not in ("mermaid", "dot"):
        raise typer.BadParameter(f"--format must be mermaid or dot, not {format!r}")
    render = to_mermaid if format == "mermaid" else to_dot
    typer.echo(render(cls.model, highlight=highlight), nl=False)


@app.command()
def migrate(
    database_url: Annotated[str, typer.Option(envvar="STEPSAGA_DATABASE_URL",
                                              help="The database to migrate")],
    schema: Annotated[str | None, typer.Option(help="PostgreSQL schema")] = None,
    revision: Annotated[str, typer.Option(
        help="Target revision (default: every package's branch to its head)")] = "heads",
) -> None:
    """Run the packaged Alembic migrations: core_saga's tables and every installed
    package's (the bridge's review tasks)."""
    from .persistence import redact_url, upgrade_sync

    url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    upgrade_sync(url, schema=schema, revision=revision)
    console.print(f"migrated {redact_url(url)} to {revision}")


@app.command()
def worker(
    factory: Annotated[str, typer.Argument(
        help="An async function package.module:build that takes WorkerSettings and "
             "returns a started-but-not-running Worker")],
    log_level: Annotated[str, typer.Option(help="Python log level")] = "INFO",
) -> None:
    """Run a worker process until SIGTERM/SIGINT (settings from STEPSAGA_* variables)."""
    from ._settings import WorkerSettings
    from ._worker import WorkerConfigurationError
    from .logs import configure_logging

    try:
        configure_logging(log_level)  # STEPSAGA_LOG_FORMAT=json for JSON lines
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    build = load_object(factory)
    try:
        settings = WorkerSettings()
        from .telemetry import configure

        telemetry = configure(otlp_endpoint=settings.otlp_endpoint)
    except ValueError as exc:
        raise typer.BadParameter(f"bad worker settings: {exc}") from exc

    async def run() -> None:
        try:
            try:
                built = await build(settings)
            except ValueError as exc:  # the factory refused its settings
                console.print(f"[red]stepsaga worker: {factory} cannot start: {exc}[/red]",
                              highlight=False)
                raise typer.Exit(2) from None
            try:
                await built.run()
            except WorkerConfigurationError as exc:  # its queues or database disagree
                console.print(f"[red]stepsaga worker: {factory} refuses to run: {exc}[/red]",
                              highlight=False)
                raise typer.Exit(2) from None
        finally:
            telemetry.flush()

    from ._event_loop import run_async

    run_async(run(), event_loop=settings.event_loop)


def _load_plugins() -> None:
    for entry in entry_points(group="stepsaga.cli"):
        try:
            entry.load()(app)
        except ModuleNotFoundError as exc:
            # A plugin whose own package is absent (the examples run from a checkout,
            # not from an installed wheel) or whose extra is not installed: its commands
            # are simply not there.
            if exc.name and entry.module.split(".")[0] == exc.name.split(".")[0]:
                continue
            if exc.name in ("fastapi", "uvicorn", "jinja2", "starlette"):
                continue
            console.print(f"[yellow]stepsaga: command plugin {entry.name!r} failed to load: "
                          f"{exc}[/yellow]")
        except Exception as exc:  # a broken plugin must not take the core commands down
            console.print(f"[yellow]stepsaga: command plugin {entry.name!r} failed to load: "
                          f"{exc}[/yellow]")


def main() -> None:
    """Entry point of the ``stepsaga`` script."""
    _load_plugins()
    app()


if __name__ == "__main__":
    main()
