"""The worker's event loop: uvloop when installed (WorkerSettings.event_loop), asyncio's
own on request or when uvloop is absent, and a clear error for a bad choice."""

from __future__ import annotations

import asyncio
import sys
import warnings

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from core_saga import WorkerSettings, run_async
from core_saga._event_loop import loop_name
from core_saga.cli import app


async def _which_loop() -> str:
    await asyncio.sleep(0)
    return loop_name(asyncio.get_running_loop())


def test_auto_runs_on_uvloop_when_it_is_installed() -> None:
    assert WorkerSettings().event_loop == "auto"
    assert run_async(_which_loop()) == "uvloop"
    assert run_async(_which_loop(), event_loop="uvloop") == "uvloop"
    assert run_async(_which_loop(), event_loop="asyncio") == "asyncio"


def test_without_uvloop_auto_falls_back_and_uvloop_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop fails
    assert run_async(_which_loop()) == "asyncio"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the refused coroutine is closed, not leaked
        with pytest.raises(ValueError, match="uvloop is not installed"):
            run_async(_which_loop(), event_loop="uvloop")


def test_a_bad_choice_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="expected one of auto, asyncio, uvloop"):
        run_async(_which_loop(), event_loop="trio")
    monkeypatch.setenv("STEPSAGA_EVENT_LOOP", "trio")
    with pytest.raises(ValidationError, match="event_loop"):
        WorkerSettings()
    # the worker command refuses it before it starts anything
    result = CliRunner().invoke(app, ["worker", "tests.core_saga.log_app:build"],
                                terminal_width=200)
    assert result.exit_code == 2
    assert "bad worker settings" in result.output
    assert "event_loop" in result.output
