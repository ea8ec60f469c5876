"""``stepsaga contracts export DIR`` and ``stepsaga contracts check OLD_DIR NEW_DIR``, as a
producer or consumer team runs them in CI: the real ``stepsaga`` script (entry point
``contracts``), exit codes a pipeline can act on, each break named."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "contracts"
STEPSAGA = str(Path(sys.executable).parent / "stepsaga")


def stepsaga(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STEPSAGA, *args], capture_output=True, text=True, timeout=120,
                          check=False, cwd=ROOT)


@pytest.fixture
def released(tmp_path: Path) -> Path:
    """The schemas as released (docs/contracts, what the registry holds)."""
    return Path(shutil.copytree(DOCS, tmp_path / "released"))


def edit(directory: Path, name: str, change: Any) -> None:
    path = directory / f"{name}.v1.schema.json"
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema, indent=2))


def test_the_command_registers_through_the_entry_point_group() -> None:
    names = {e.name: e.value for e in entry_points(group="stepsaga.cli")}
    assert names["contracts"] == "bridge.contracts.cli:register"


def test_export_writes_every_schema(tmp_path: Path) -> None:
    result = stepsaga("contracts", "export", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(p.name for p in DOCS.glob("*.schema.json"))
    for path in (tmp_path / "out").iterdir():
        assert path.read_text() == (DOCS / path.name).read_text()


def test_the_same_schemas_are_compatible(released: Path, tmp_path: Path) -> None:
    assert stepsaga("contracts", "export", str(tmp_path / "new")).returncode == 0
    result = stepsaga("contracts", "check", str(released), str(tmp_path / "new"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "compatible" in result.stdout


def test_an_optional_field_added_is_compatible(released: Path, tmp_path: Path) -> None:
    new = Path(shutil.copytree(released, tmp_path / "new"))
    edit(new, "SupervisionRequested", lambda s: s["properties"].update(
        priority={"type": "string"}))
    assert stepsaga("contracts", "check", str(released), str(new)).returncode == 0


def test_a_new_outcome_breaks_the_consumers_that_cannot_read_it(
        released: Path, tmp_path: Path) -> None:
    new = Path(shutil.copytree(released, tmp_path / "new"))
    edit(new, "SupervisionCompleted",
         lambda s: s["properties"]["outcome"]["enum"].append("escalated"))
    result = stepsaga("contracts", "check", str(released), str(new))
    assert result.returncode == 1
    assert ("BREAKING SupervisionCompleted.v1.schema.json: $.outcome: enum-value-added"
            in result.stdout)
    assert "'escalated'" in result.stdout
    lenient = stepsaga("contracts", "check", "--lenient-enums", str(released), str(new))
    assert lenient.returncode == 0, lenient.stdout


@pytest.mark.parametrize(("name", "change", "expected"), [
    ("SupervisionRequested", lambda s: s["required"].remove("replyTo"),
     "$.replyTo: no-longer-required"),
    ("SupervisionRequested", lambda s: s["properties"]["handoffId"].update(minLength=0),
     "$.handoffId: constraint-loosened"),
    ("SupervisionRequested", lambda s: s["properties"]["reason"].update(maxLength=100),
     "$.reason: constraint-tightened"),
    ("SupervisionRequested", lambda s: s["properties"]["schemaVersion"].update(const=2),
     "$.schemaVersion: enum-value-removed"),
    ("SupervisionRequested", lambda s: s.pop("allOf"), "$: constraint-changed"),
    ("ReviewTask", lambda s: s["properties"]["taskToken"].update(type="integer"),
     "$.taskToken: type-changed"),
])
def test_each_break_fails_the_check_by_name(released: Path, tmp_path: Path, name: str,
                                            change: Any, expected: str) -> None:
    new = Path(shutil.copytree(released, tmp_path / "new"))
    edit(new, name, change)
    result = stepsaga("contracts", "check", str(released), str(new))
    assert result.returncode == 1
    assert f"BREAKING {name}.v1.schema.json: {expected}" in result.stdout


def test_a_removed_contract_breaks(released: Path, tmp_path: Path) -> None:
    new = Path(shutil.copytree(released, tmp_path / "new"))
    (new / "ReviewTask.v1.schema.json").unlink()
    result = stepsaga("contracts", "check", str(released), str(new))
    assert result.returncode == 1
    assert "ReviewTask.v1.schema.json: $: contract-removed" in result.stdout


def test_unreadable_input_exits_2_with_the_reason(released: Path, tmp_path: Path) -> None:
    missing = stepsaga("contracts", "check", str(released), str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "is not a directory" in missing.stderr
    broken = Path(shutil.copytree(released, tmp_path / "broken"))
    (broken / "ReviewTask.v1.schema.json").write_text("{not json")
    result = stepsaga("contracts", "check", str(released), str(broken))
    assert result.returncode == 2 and "not a readable JSON schema" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert stepsaga("contracts", "check", str(released), str(empty)).returncode == 2


CONTRACTS_DOC = ROOT / "docs" / "contracts.md"


def _blocks(language: str) -> list[str]:
    import re

    fences = re.findall(r"^```(\w*)\n(.*?)^```", CONTRACTS_DOC.read_text(), re.M | re.S)
    return [body for lang, body in fences if lang == language]


def test_the_docs_commands_run_as_written(tmp_path: Path) -> None:
    """docs/contracts.md's export-then-check, in a checkout where the released schemas
    sit in released/contracts."""
    [commands] = [b for b in _blocks("") if "stepsaga contracts check" in b]
    shutil.copytree(DOCS, tmp_path / "released" / "contracts")
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "compatible" in result.stdout


def test_the_docs_validation_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    from .test_models_match_schemas import REQUEST

    [code] = _blocks("python")
    monkeypatch.chdir(ROOT)
    namespace: dict[str, Any] = {"detail": REQUEST}
    exec(code, namespace)
    assert namespace["errors"] == []
    namespace = {"detail": {**REQUEST, "schemaVersion": 2, "replyTo": "order-saga"}}
    exec(code, namespace)
    assert len(namespace["errors"]) == 2
