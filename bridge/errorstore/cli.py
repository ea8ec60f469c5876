"""``stepsaga errors list/show/redrive`` and ``stepsaga dlq redrive``: the error store and
dead-letter queues from the command line. Whoever runs them needs the workers' database
and AWS credentials (that is their authorisation); each redrive is audited under
``--by`` (default: the login name)."""

from __future__ import annotations

import asyncio
import getpass
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

out = Console()
err = Console(stderr=True)
T = TypeVar("T")

errors_app = typer.Typer(name="errors", no_args_is_help=True,
                         help="The error store: list, show and redrive failed messages.")
dlq_app = typer.Typer(name="dlq", no_args_is_help=True,
                      help="SQS dead-letter queues: move their messages back.")

_DURATION = re.compile(r"^(\d{1,9})([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

DatabaseUrl = Annotated[str, typer.Option(envvar="STEPSAGA_DATABASE_URL",
                                          help="The workers' database")]
Schema = Annotated[str | None, typer.Option(envvar="STEPSAGA_DATABASE_SCHEMA",
                                            help="PostgreSQL schema")]
By = Annotated[str | None, typer.Option(
    "--by", envvar="STEPSAGA_OPERATOR",
    help="Your name in the audit log (default: the login name)")]
Reason = Annotated[str | None, typer.Option(help="Why (recorded in the audit log)")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON")]
DEFAULT_DB = "sqlite+aiosqlite:///stepsaga.db"


def _fail(message: str) -> typer.Exit:
    from bridge.cli import safe_text

    err.print(Text.assemble(("error:", "red"), " ", safe_text(message)))
    return typer.Exit(code=1)


def duration(value: str | None) -> timedelta | None:
    """``90``, ``90s``, ``15m``, ``2h`` or ``3d``."""
    if value is None:
        return None
    found = _DURATION.match(value.strip())
    if not found:
        raise typer.BadParameter(f"{value!r} is not a duration: 90s, 15m, 2h or 3d")
    return timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2)])


def _run(database_url: str, schema: str | None,
         work: Callable[[Any, Any], Awaitable[T]]) -> T:
    """Run `work(store, audit)` on the database, any failure a clear exit 1."""
    from bridge.audit import AuditLog
    from core_saga.persistence import redact_url, store_from_url

    where = redact_url(database_url)

    async def main() -> T:
        store = store_from_url(database_url, must_exist=True, schema=schema, pool_size=2)
        try:
            missing = await store.missing_tables()
            if missing:
                raise ValueError(f"the database {where} has no stepsaga tables "
                                 f"({', '.join(missing)} missing): is it the workers' "
                                 "database? (`stepsaga migrate` creates them)")
            audit = AuditLog.open(store)
            await audit.create_table()
            return await work(store, audit)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except typer.Exit:
        raise
    except (FileNotFoundError, ValueError, TypeError) as exc:
        raise _fail(f"{exc} (set --database-url or STEPSAGA_DATABASE_URL)") from None
    except Exception as exc:
        orig = getattr(exc, "orig", None)  # a DBAPIError: never its statement
        line = (str(orig or exc).strip().splitlines() or [""])[0][:300]
        raise _fail(f"{type(exc).__name__}: {line} (database {where}); nothing "
                    "changed") from None


def _filters(endpoint: str | None, message_type: str | None, older_than: str | None,
             newer_than: str | None, order: str | None, no_order: bool,
             status: str) -> Any:
    from bridge.errorstore import ErrorFilters

    if status not in ("open", "redriven", "all"):
        raise typer.BadParameter("--status is open, redriven or all")
    return ErrorFilters(endpoint=endpoint, message_type=message_type,
                        older_than=duration(older_than), newer_than=duration(newer_than),
                        correlation_id=order, without_order=no_order,
                        status=status)  # type: ignore[arg-type]


Endpoint = Annotated[str | None, typer.Option(help="Only this endpoint (queue name)")]
MessageType = Annotated[str | None, typer.Option(
    "--type", help="Only message types containing this (case-insensitive)")]
OlderThan = Annotated[str | None, typer.Option(help="Only errors older than 90s, 15m, 2h, 3d")]
NewerThan = Annotated[str | None, typer.Option(help="Only errors within 90s, 15m, 2h, 3d")]
Order = Annotated[str | None, typer.Option(help="Only this order's errors")]
NoOrder = Annotated[bool, typer.Option("--no-order", help="Only errors with no order id")]


def list_command(
    endpoint: Endpoint = None, message_type: MessageType = None,
    older_than: OlderThan = None, newer_than: NewerThan = None, order: Order = None,
    no_order: NoOrder = False,
    status: Annotated[str, typer.Option(help="open, redriven or all")] = "all",
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    database_url: DatabaseUrl = DEFAULT_DB, schema: Schema = None, as_json: AsJson = False,
) -> None:
    """List the error store, the newest first: messages an endpoint could not handle
    (with or without an order id) and outbox deliveries refused for good."""
    from bridge.cli import safe_text
    from bridge.errorstore import list_errors

    filters = _filters(endpoint, message_type, older_than, newer_than, order, no_order,
                       status)
    items, total = _run(database_url, schema, lambda store, _: list_errors(
        store, filters, now=datetime.now(UTC), limit=limit))
    if as_json:
        typer.echo(json.dumps({"errors": [i.as_dict() for i in items], "total": total},
                              indent=2))
        return
    table = Table(header_style="bold")
    for column in ("id", "at (UTC)", "endpoint", "type", "order", "reason", "status"):
        table.add_column(column)
    for i in items:
        r = i.record
        short = (r.message_type or "—").split(":")
        table.add_row(str(i.id), r.at.strftime("%Y-%m-%d %H:%M:%S"), Text(safe_text(r.endpoint)),
                      Text(safe_text(short[-2] if len(short) > 2 else short[0])),
                      Text(safe_text(r.correlation_id or "—")),
                      Text(safe_text(f"{r.error_type}: {r.reason}"[:120])),
                      Text("redriven" if i.redrive else "open",
                           style="green" if i.redrive else "red"))
    out.print(table)
    out.print(Text(f"{total} error{'s' if total != 1 else ''} match"
                   f"{'es' if total == 1 else ''}" + (f" (first {len(items)} shown)"
                                                     if total > len(items) else "")))


def show_command(
    error_id: Annotated[int, typer.Argument(min=1, help="The error's id")],
    database_url: DatabaseUrl = DEFAULT_DB, schema: Schema = None, as_json: AsJson = False,
) -> None:
    """Show one error: where, why, its message's body, and its redrive if it had one."""
    from bridge.cli import safe_text
    from bridge.errorstore import get_error

    item = _run(database_url, schema, lambda store, _: get_error(store, error_id))
    if item is None:
        raise _fail(f"no error {error_id}")
    data = item.as_dict(body=True)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    for key in ("id", "at", "status", "endpoint", "messageType", "messageId",
                "correlationId", "errorType", "reason"):
        out.print(Text.assemble((f"{key}: ", "bold"), safe_text(data[key] or "—")))
    if item.redrive is not None:
        out.print(Text(safe_text(f"redriven: by {item.redrive.actor} at "
                                 f"{item.redrive.at:%Y-%m-%d %H:%M:%S} to "
                                 f"{item.redrive.queue}"), style="green"))
    out.print(Text("body:", style="bold"))
    out.print(Text(safe_text(item.record.body)))


def redrive_command(
    error_id: Annotated[int | None, typer.Argument(min=1, help="The error's id")] = None,
    all_matching: Annotated[bool, typer.Option(
        "--all", help="Every open error matching the filters (at least one)")] = False,
    endpoint: Endpoint = None, message_type: MessageType = None,
    older_than: OlderThan = None, newer_than: NewerThan = None, order: Order = None,
    no_order: NoOrder = False,
    reason: Reason = None, by: By = None,
    queue_prefix: Annotated[str, typer.Option(
        envvar="STEPSAGA_QUEUE_PREFIX", help="The workers' queue prefix")] = "",
    database_url: DatabaseUrl = DEFAULT_DB, schema: Schema = None, as_json: AsJson = False,
) -> None:
    """Send an error's message (or every open error matching the filters, with --all)
    back to its endpoint's queue (AWS from STEPSAGA_AWS_*). It keeps its message id, so
    a duplicate is absorbed by the inbox; an error redriven before is left alone."""
    from bridge.errorstore import ErrorFilters, ErrorRedriver, TransportSender, queue_transport
    from core_saga import AwsConfig

    filters = _filters(endpoint, message_type, older_than, newer_than, order, no_order,
                       "open")
    if (error_id is None) == (not all_matching):
        raise typer.BadParameter("give an error id, or --all with filters")
    if all_matching and filters == ErrorFilters(status="open"):
        raise typer.BadParameter("--all needs at least one filter (--endpoint, --type, "
                                 "--older-than, --newer-than, --order, --no-order)")
    actor = by or getpass.getuser()

    async def work(store: Any, audit: Any) -> Any:
        async with queue_transport(AwsConfig.from_env(), queue_prefix) as transport:
            redriver = ErrorRedriver(store, audit, TransportSender(transport))
            if error_id is not None:
                return await redriver.redrive(error_id, actor=actor, reason=reason)
            return await redriver.redrive_matching(filters, actor=actor, reason=reason)

    result = _run(database_url, schema, work)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
    failed = getattr(result, "stopped", None) or getattr(result, "outcome", "") in (
        "not_found", "not_redrivable", "failed")
    if failed:
        raise _fail(result.message)
    if not as_json:
        out.print(Text(result.message))


def dlq_redrive_command(
    queue: Annotated[str, typer.Argument(help="The dead-letter queue (name or URL)")],
    to: Annotated[str | None, typer.Option(
        help="Where the messages go (default: the queue whose dead-letter queue it is)")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many")] = None,
    reason: Reason = None, by: By = None,
    database_url: DatabaseUrl = DEFAULT_DB, schema: Schema = None, as_json: AsJson = False,
) -> None:
    """Move an SQS dead-letter queue's messages back to its source queue (AWS from
    STEPSAGA_AWS_*): received, sent, then deleted, ten at a time. Each keeps its message
    id, so a duplicate is absorbed by the inbox. Audited in the database."""
    from botocore.exceptions import BotoCoreError, ClientError

    from bridge.errorstore import DlqProblem, audit_dlq_redrive, redrive_dead_letters, sqs_client
    from core_saga import AwsConfig

    actor = by or getpass.getuser()

    async def work(_: Any, audit: Any) -> Any:
        try:
            async with sqs_client(AwsConfig.from_env()) as client:
                result = await redrive_dead_letters(client, queue, to=to, limit=limit)
        except DlqProblem as exc:
            raise _fail(f"{exc}: nothing moved") from None
        except (BotoCoreError, ClientError) as exc:
            raise _fail(f"SQS did not answer ({type(exc).__name__}: {exc}): nothing "
                        "moved") from None
        await audit_dlq_redrive(audit, result, actor=actor, reason=reason,
                                at=datetime.now(UTC))
        return result

    result = _run(database_url, schema, work)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
    if result.problem or result.failed:
        raise _fail(result.message)
    if not as_json:
        out.print(Text(result.message))


errors_app.command("list")(list_command)
errors_app.command("show")(show_command)
errors_app.command("redrive")(redrive_command)
dlq_app.command("redrive")(dlq_redrive_command)


def register(app: typer.Typer) -> None:
    """Add ``errors`` and ``dlq`` to the ``stepsaga`` app."""
    app.add_typer(errors_app, name="errors")
    app.add_typer(dlq_app, name="dlq")
