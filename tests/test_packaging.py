"""What installing stepsaga gives a user: light imports, type information, honest extras."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("fastapi", "starlette", "jinja2", "uvicorn", "typer", "alembic", "moto", "boto3",
         "uvloop")


@pytest.mark.parametrize("module", ["core_saga", "bridge.contracts", "supervisor_workflows",
                                    "bridge", "core_saga.testing", "core_saga.persistence"])
def test_importing_the_libraries_loads_no_console_cli_or_emulator(module: str) -> None:
    probe = (f"import sys, {module}\n"
             f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, cwd=ROOT).stdout.strip()
    assert loaded == "", f"import {module} loaded {loaded}"


def test_the_engine_depends_only_on_what_it_needs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = {dep.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip()
                for dep in project["dependencies"]}
    assert required == {"pydantic", "pydantic-settings", "sqlalchemy", "aiosqlite", "asyncpg",
                        "aiobotocore", "orjson", "opentelemetry-api"}
    extras = project["optional-dependencies"]
    assert any(dep.startswith("fastapi") for dep in extras["console"])
    assert any(dep.startswith("typer") for dep in extras["cli"])
    assert any(dep.startswith("uvloop") for dep in extras["cli"])  # the worker's loop
    assert "stepsaga[cli,console,otel]" in extras["ops"]
    assert any("stepsaga[ops" in dep for dep in extras["dev"])


def test_a_user_file_type_checks_against_the_installed_packages(tmp_path: Path) -> None:
    user = tmp_path / "my_service.py"
    user.write_text('''
from decimal import Decimal

from sqlalchemy import Column, MetaData, Numeric, String, Table, insert

from core_saga import ConsumeContext, Consumer, Event, Message, Saga, SagaState, State


ledger = Table("ledger", MetaData(), Column("order_id", String, primary_key=True),
               Column("amount", Numeric))


class Charge(Message):
    order_id: str
    amount: Decimal


class ChargeConsumer(Consumer[Charge]):
    async def consume(self, ctx: ConsumeContext[Charge]) -> None:
        result = await ctx.transaction.execute(
            insert(ledger).values(order_id=ctx.message.order_id, amount=ctx.message.amount))
        count: int = result.rowcount
        assert count == 1


class OrderState(SagaState):
    pass


class OrderSaga(Saga[OrderState]):
    done = State(terminal=True)
    charged = Event(Charge, correlate_by=lambda m: m.order_id)

    def define(self) -> None:
        self.initially(self.when(self.charged).transition_to(self.done))
''')
    (tmp_path / "mypy.ini").write_text("[mypy]\nstrict = True\n")
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)}
    checked = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "mypy.ini",
                              "--cache-dir", str(tmp_path / ".cache"), "my_service.py"],
                             capture_output=True, text=True, cwd=tmp_path, env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Success" in checked.stdout


@pytest.mark.slow
def test_the_wheel_ships_the_libraries_typed_and_not_the_examples(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    [wheel] = tmp_path.glob("stepsaga-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if "/" in name}
    assert {"core_saga", "bridge", "supervisor_workflows"} <= tops
    assert not any(top.startswith("examples") for top in tops)
    for package in ("core_saga", "bridge", "supervisor_workflows"):
        assert f"{package}/py.typed" in names
    assert "bridge/reviews/migrations/versions/b0001_review_tasks.py" in names
