"""``stepsaga console`` and ``stepsaga orders show``: registered through the
``stepsaga.cli`` entry points, each with --help and clear errors."""

from __future__ import annotations

import asyncio
import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from bridge.cli import register
from core_saga.persistence import SqlStore
from tests.console.test_timeline import SECRET, seed

runner = CliRunner()


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command()
    def graph() -> None:  # a core command, so that typer keeps subcommand names
        """(stand-in)"""

    register(app)
    return app


def test_the_commands_register_through_the_entry_point_group() -> None:
    names = {e.name: e.value for e in entry_points(group="stepsaga.cli")}
    assert names["console"] == "bridge.cli:register"


@pytest.mark.parametrize("args", [["console", "--help"], ["orders", "--help"],
                                  ["orders", "show", "--help"], ["errors", "--help"],
                                  ["errors", "list", "--help"], ["errors", "show", "--help"],
                                  ["errors", "redrive", "--help"], ["dlq", "redrive", "--help"]])
def test_every_command_has_help(cli: typer.Typer, args: list[str]) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_orders_show_prints_the_timeline(cli: typer.Typer, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"

    async def prepare() -> None:
        store = SqlStore.from_url(url)
        await store.create_schema()
        await seed(store, "order-7")
        await store.close()

    asyncio.run(prepare())
    result = runner.invoke(cli, ["orders", "show", "order-7", "--database-url", url,
                                 "--no-aws"],
                           env={"COLUMNS": "200", "STEPSAGA_AWS_ENDPOINT_URL": None})
    assert result.exit_code == 0, result.output
    assert "OrderToCash order-7 is in PaymentPending" in result.output
    assert "received OrderSubmitted: Initial → AwaitingReview" in result.output
    assert "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1" in \
        result.output
    assert "trace id: 4bf92f3577b34da6a3ce929d0e0e4736" in result.output
    assert SECRET not in result.output
    as_json = runner.invoke(cli, ["orders", "show", "order-7", "--database-url", url,
                                  "--no-aws", "--json"])
    assert as_json.exit_code == 0
    assert json.loads(as_json.output)["state"] == "PaymentPending"
    assert SECRET not in as_json.output

    missing = runner.invoke(cli, ["orders", "show", "nobody", "--database-url", url,
                                  "--no-aws"])
    assert missing.exit_code == 1 and "no order 'nobody'" in missing.output
    wide = {"COLUMNS": "300"}
    absent = tmp_path / "absent.db"
    nowhere = runner.invoke(cli, ["orders", "show", "x", "--database-url",
                                  f"sqlite+aiosqlite:///{absent}"], env=wide)
    assert nowhere.exit_code == 1 and "no SQLite database at" in nowhere.output
    assert not absent.exists()  # a mistyped path is not created
    bad = runner.invoke(cli, ["orders", "show", "x", "--database-url", "mysql://h/db"],
                        env=wide)
    assert bad.exit_code == 1 and "unsupported store URL" in bad.output
    empty = tmp_path / "empty.db"
    empty.touch()
    unmigrated = runner.invoke(cli, ["orders", "show", "x", "--database-url",
                                     f"sqlite+aiosqlite:///{empty}", "--no-aws"], env=wide)
    assert unmigrated.exit_code == 1 and "has no stepsaga tables" in unmigrated.output


def test_console_refuses_bad_settings(cli: typer.Typer) -> None:
    result = runner.invoke(cli, ["console", "--port", "0"],
                           env={"STEPSAGA_CONSOLE_TOKENS": "{not json"})
    assert result.exit_code == 1 and "bad console settings" in result.output
    result = runner.invoke(cli, ["console", "--saga", "nowhere.module:Saga"])
    assert result.exit_code == 1 and "bad console settings" in result.output
