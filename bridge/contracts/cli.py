"""``stepsaga contracts export | check``: the EventBridge contracts' JSON Schemas for
producers and consumers. Registered through the ``stepsaga.cli`` entry-point group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

contracts_app = typer.Typer(name="contracts", no_args_is_help=True,
                            help="The EventBridge event contracts (JSON Schemas).")


@contracts_app.command("export")
def export(
    directory: Annotated[Path, typer.Argument(help="Where to write <Name>.v1.schema.json",
                                              file_okay=False)] = Path("docs/contracts"),
) -> None:
    """Write the JSON Schemas of the contracts."""
    from ._schema import export_schemas

    try:
        for path in export_schemas(str(directory)):
            console.print(str(path))
    except OSError as exc:
        errors.print(f"[red]error:[/red] cannot write to {directory}: {exc}")
        raise typer.Exit(code=1) from None


@contracts_app.command("check")
def check(
    old_dir: Annotated[Path, typer.Argument(help="The schemas released before (what "
                                                 "consumers read with)")],
    new_dir: Annotated[Path, typer.Argument(help="The schemas about to be released")],
    lenient_enums: Annotated[bool, typer.Option(
        help="Consumers accept enum values they do not know (the saga's models do not)")
    ] = False,
) -> None:
    """Exit 1 when NEW_DIR breaks a consumer of OLD_DIR, either way: old readers of new
    events, or new readers of old events (exit 2 when a directory cannot be read)."""
    from ._directories import SchemaDirectoryError, compare_schema_directories

    try:
        breaks = compare_schema_directories(old_dir, new_dir,
                                            enum_additions_break=not lenient_enums)
    except SchemaDirectoryError as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from None
    if not breaks:
        console.print(f"compatible: {new_dir} breaks no consumer of {old_dir}")
        return
    for item in breaks:
        console.print(f"BREAKING {item}", markup=False)
    errors.print(f"[red]{len(breaks)} breaking change(s)[/red] from {old_dir} to {new_dir}")
    raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add ``contracts`` to the ``stepsaga`` app."""
    app.add_typer(contracts_app, name="contracts")
