"""``stepsaga orders resume``: operator actions on one order from the command line.
Whoever runs them needs the workers' database (that is their authorisation); each action
is audited under ``--by`` (default: the login name) with the reason given."""

from __future__ import annotations

import getpass
import importlib
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from bridge.errorstore.cli import DEFAULT_DB, AsJson, By, DatabaseUrl, Schema, _fail, _run

out = Console()

Sagas = Annotated[list[str] | None, typer.Option(
    "--saga", help="The saga class (package.module:Class), whose final states an action "
                   "refuses; repeat for several")]


def final_states(paths: list[str]) -> frozenset[str]:
    """The final states of the saga classes named ``package.module:Class``."""
    return frozenset().union(*(model.terminal_states for model in saga_models(paths)))


def saga_models(paths: list[str]) -> list[Any]:
    """The models of the saga classes named ``package.module:Class``."""
    from core_saga import Saga

    found: list[Any] = []
    for path in paths:
        module, _, name = path.partition(":")
        try:
            cls = getattr(importlib.import_module(module), name) if module and name else None
        except (ImportError, AttributeError) as exc:
            raise typer.BadParameter(f"cannot load the saga class {path!r}: {exc}") from None
        if not (isinstance(cls, type) and issubclass(cls, Saga)):
            raise typer.BadParameter(f"{path!r} is not a saga class (package.module:Class)")
        found.append(cls.model)
    return found


def _print(result: Any, as_json: bool) -> None:
    from bridge.cli import safe_text

    if as_json:
        typer.echo(json.dumps(result.as_dict()))
    else:
        out.print(Text(safe_text(result.message)))
    if result.outcome in ("not_found", "finished"):
        raise typer.Exit(code=1)


def resume(
    order_id: Annotated[str, typer.Argument(help="The order's correlation id")],
    reason: Annotated[str, typer.Option(help="Why (required; recorded in the audit log)")],
    fire_timers: Annotated[bool, typer.Option(
        "--fire-timers", help="Fire the order's timers now rather than when due")] = False,
    saga: Sagas = None, by: By = None, database_url: DatabaseUrl = DEFAULT_DB,
    schema: Schema = None, as_json: AsJson = False,
) -> None:
    """Resume a stuck order: send its unsent outbox rows now (due, failed for good, or
    held by a lost dispatcher) with a fresh retry budget, and re-arm its timers. Exit 1
    for an unknown or finished order (nothing changed)."""
    from bridge.actions import resume_order

    if not reason.strip():
        raise _fail("--reason is required: say why")
    terminal = final_states(saga or [])
    actor = by or getpass.getuser()

    async def work(store: Any, audit: Any) -> Any:
        return await resume_order(store, audit, order_id, actor=actor,
                                  reason=reason.strip(), terminal_states=terminal,
                                  fire_timers=fire_timers)

    _print(_run(database_url, schema, work), as_json)


def cancel(
    order_id: Annotated[str, typer.Argument(help="The order's correlation id")],
    reason: Annotated[str, typer.Option(help="Why (required; recorded in the audit log)")],
    saga: Annotated[list[str], typer.Option(
        "--saga", help="The saga class (package.module:Class); repeat for several")],
    queue: Annotated[str, typer.Option(
        help="The queue the saga is hosted on (without the prefix)")],
    queue_prefix: Annotated[str, typer.Option(
        envvar="STEPSAGA_QUEUE_PREFIX", help="The workers' queue prefix")] = "",
    by: By = None, database_url: DatabaseUrl = DEFAULT_DB, schema: Schema = None,
    as_json: AsJson = False,
) -> None:
    """Cancel an order through its saga: an OperatorCancel on the saga's queue; the saga
    undoes what was done and ends canceled (operator_canceled). Exit 1 for an unknown or
    finished order, a saga that does not handle the cancel, or a send SQS did not take
    (nothing changed)."""
    from bridge.actions import cancel_order
    from bridge.errorstore import TransportSender, queue_transport
    from core_saga import AwsConfig

    if not reason.strip():
        raise _fail("--reason is required: say why")
    models = {model.name: model for model in saga_models(saga)}
    actor = by or getpass.getuser()

    async def work(store: Any, audit: Any) -> Any:
        async with queue_transport(AwsConfig.from_env(), queue_prefix) as transport:
            return await cancel_order(store, audit, TransportSender(transport).send,
                                      order_id, actor=actor, reason=reason.strip(),
                                      models=models,
                                      queues={name: queue for name in models})

    result = _run(database_url, schema, work)
    _print(result, as_json)
    if result.outcome in ("unsupported", "failed"):
        raise typer.Exit(code=1)


def abort(
    order_id: Annotated[str, typer.Argument(help="The order's correlation id")],
    reason: Annotated[str, typer.Option(help="Why (required; the execution's cause)")],
    saga: Sagas = None, by: By = None, database_url: DatabaseUrl = DEFAULT_DB,
    schema: Schema = None, as_json: AsJson = False,
) -> None:
    """Abort the order's running supervisor executions: StopExecution with error
    OperatorAborted and "NAME: REASON" as cause (AWS from STEPSAGA_AWS_*). Exit 1 for an
    unknown or finished order, or when Step Functions did not answer."""
    from bridge.actions import abort_execution
    from bridge.reviews import StepFunctions

    if not reason.strip():
        raise _fail("--reason is required: say why")
    terminal = final_states(saga or [])
    actor = by or getpass.getuser()

    async def work(store: Any, audit: Any) -> Any:
        return await abort_execution(store, audit, StepFunctions(), order_id, actor=actor,
                                     reason=reason.strip(), terminal_states=terminal)

    result = _run(database_url, schema, work)
    _print(result, as_json)
    if result.outcome == "failed":
        raise typer.Exit(code=1)


def retry_handoff(
    order_id: Annotated[str, typer.Argument(help="The order's correlation id")],
    reason: Annotated[str, typer.Option(help="Why (required; recorded in the audit log)")],
    saga: Sagas = None, by: By = None, database_url: DatabaseUrl = DEFAULT_DB,
    schema: Schema = None, as_json: AsJson = False,
) -> None:
    """Publish the order's hand-offs whose workflow never started again, with the same
    hand-off ids (the running workers send them). Exit 1 for an unknown or finished
    order."""
    from bridge.actions import retry_handoff as retry

    if not reason.strip():
        raise _fail("--reason is required: say why")
    terminal = final_states(saga or [])
    actor = by or getpass.getuser()

    async def work(store: Any, audit: Any) -> Any:
        return await retry(store, audit, order_id, actor=actor, reason=reason.strip(),
                           terminal_states=terminal)

    _print(_run(database_url, schema, work), as_json)


def register(orders_app: typer.Typer) -> None:
    """Add the action commands to ``stepsaga orders``."""
    orders_app.command("resume")(resume)
    orders_app.command("cancel")(cancel)
    orders_app.command("retry-handoff")(retry_handoff)
    orders_app.command("abort")(abort)
