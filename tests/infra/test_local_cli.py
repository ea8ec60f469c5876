"""``stepsaga local``'s command line refuses what it cannot do, before starting anything:
an unknown stage, a command that needs a deployment when none exists."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

STEPSAGA = str(Path(sys.executable).parent / "stepsaga")


def local(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STEPSAGA_", "AWS_", "MOTO_"))}
    return subprocess.run([STEPSAGA, "local", *args, "--state-dir", str(state)],
                          capture_output=True, text=True, timeout=120, check=False,
                          env=env, stdin=subprocess.DEVNULL)


def test_the_command_registers_through_the_entry_point_group() -> None:
    names = {e.name: e.value for e in entry_points(group="stepsaga.cli")}
    assert names["local"] == "stepsaga_infra.cli:register"


def test_a_stage_without_a_settings_file_is_refused(tmp_path: Path) -> None:
    result = local("deploy", "--stage", "nosuch", state=tmp_path)
    assert result.returncode == 2
    assert "no settings file" in result.stderr and "nosuch.json" in result.stderr
    assert not (tmp_path / "emulator.json").exists()  # nothing was started


def test_diff_settings_and_destroy_need_a_deployment(tmp_path: Path) -> None:
    for command in ("diff", "settings", "destroy"):
        result = local(command, state=tmp_path)
        assert result.returncode == 1, (command, result.stderr)
        assert "no local emulator: run `stepsaga local deploy` first" in result.stderr
