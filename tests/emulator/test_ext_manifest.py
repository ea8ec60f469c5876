"""Extension manifest: the server says which extensions it applied and that it runs
state machines; a client requiring extensions refuses a server without them."""

from __future__ import annotations

import pytest

from core_saga.emulator import (
    EXTENSIONS,
    Emulator,
    EmulatorMismatchError,
    require_extensions,
    server_manifest,
)


def test_the_session_server_lists_every_extension_and_runs_machines(
        emulator: Emulator) -> None:
    manifest = server_manifest(emulator.endpoint_url)
    assert manifest is not None
    assert manifest["extensions"] == list(EXTENSIONS)
    assert manifest["moto"] == "5.2.5"
    assert manifest["executeStateMachine"] is True
    assert emulator.manifest() == manifest
    assert require_extensions(emulator.endpoint_url, EXTENSIONS) == manifest


def test_a_missing_extension_is_named(emulator: Emulator) -> None:
    with pytest.raises(EmulatorMismatchError, match=r"lacks the extension.*no_such_fix"):
        require_extensions(emulator.endpoint_url, ("cfn_event_bus_ref", "no_such_fix"))


def test_a_plain_moto_is_refused(plain_moto: str) -> None:
    assert server_manifest(plain_moto) is None
    with pytest.raises(EmulatorMismatchError, match="not the stepsaga emulator"):
        require_extensions(plain_moto, ("cfn_event_bus_ref",))


def test_every_extension_has_a_smoke_test_and_a_row_in_the_docs() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "emulator.md").read_text()
    for name in EXTENSIONS:
        assert (Path(__file__).parent / f"test_ext_{name}.py").exists(), name
        assert f"| `{name}` |" in doc, name
