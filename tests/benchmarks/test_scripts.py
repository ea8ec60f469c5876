"""Smoke tests of the benchmark scripts: each runs with the tiniest parameters in a
subprocess, exits 0 and prints its figures line. Speed is never asserted here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import requires_postgres

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

pytestmark = [pytest.mark.postgres, requires_postgres]


def run_script(name: str, *args: str, timeout: float = 120) -> str:
    """Run benchmarks/`name` with `args`; its stdout (the test fails on a non-zero exit)."""
    done = subprocess.run([sys.executable, str(BENCHMARKS / name), *args],
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{name} exited {done.returncode}:\n{done.stderr[-4000:]}"
    assert done.stdout.startswith("machine: "), done.stdout[:500]
    return done.stdout


def test_ceiling_prints_the_ratio_per_concurrency() -> None:
    # 200 transitions a run: the CPU is read over the timed part only, and the server's
    # from /proc in ticks of 10 ms (a run of a few transitions can read 0)
    out = run_script("ceiling.py", "--sagas", "40", "--events", "5", "--concurrency", "1,8",
                     "--repeats", "1", "--cpu", "--waits",
                     "--modes", "per-message,batched,state-index")
    assert "engine (state-index) / ceiling at   8 connections = " in out
    assert ", warm-up 8 transitions a connection, " in out  # both sides, off the clock
    assert "asyncpg loop (ceiling)     8 connections" in out
    for mode in ("per-message", "batched"):
        assert f"engine ({mode}) / ceiling at   1 connections = " in out
        assert f"engine ({mode}) / ceiling at   8 connections = " in out
    # the CPU split, the server's read from /proc (PostgreSQL runs on this machine)
    cpu = out.split("CPU per transition", 1)[1]
    line = next(x for x in cpu.splitlines() if "engine, per message        1" in x)
    client, server = (int(part) for part in line.split("connections")[1].split("/"))
    assert client > 0 and server > 0
    # where the connections were: each line names at least one place, with a count
    waits = out.split("where the connections were", 1)[1]
    line = next(x for x in waits.splitlines() if "engine, per message        8" in x)
    assert re.search(r"(client \(|running|waiting: )[^,]* \d+\.\d", line), line


def test_order_to_cash_in_memory_prints_rates_and_latencies() -> None:
    out = run_script("order_to_cash.py", "--orders", "20", "--repeats", "1",
                     "--variants", "memory+sqlite,memory+postgres")
    assert "figures: memory+sqlite orders/s " in out
    assert "figures: memory+postgres orders/s " in out
    assert "18 completed, 2 canceled per run" in out


def test_order_to_cash_on_uvloop_and_on_asyncio_in_the_same_run() -> None:
    out = run_script("order_to_cash.py", "--orders", "20", "--repeats", "1",
                     "--variants", "memory+postgres,memory+postgres-asyncio")
    assert ", event loop uvloop\n" in out  # the loop a worker takes by default
    assert "figures: memory+postgres-asyncio orders/s " in out
    assert "figures: memory+postgres / memory+postgres-asyncio orders per second = " in out


def test_order_to_cash_against_an_earlier_revision_in_the_same_run() -> None:
    out = run_script("order_to_cash.py", "--orders", "20", "--repeats", "1",
                     "--variants", "memory+postgres", "--baseline", "HEAD")
    assert "figures: baseline orders/s " in out
    assert "figures: memory+postgres / HEAD orders per second = " in out


@pytest.mark.emulator
def test_order_to_cash_over_the_emulator_with_one_and_two_processes() -> None:
    out = run_script("order_to_cash.py", "--sqs-orders", "20", "--window", "10",
                     "--repeats", "1", "--variants", "sqs-1proc,sqs-2proc")
    assert "figures: sqs-1proc orders/s " in out
    assert "figures: sqs-2proc orders/s " in out
    assert "SQS calls per order median" in out


def test_peer_dbos_prints_the_ratio() -> None:
    out = run_script("peer_dbos.py", "--orders", "20", "--window", "8", "--repeats", "1")
    assert "stepsaga / DBOS (transactions) orders per second = " in out
    assert "stepsaga / DBOS (steps) orders per second = " in out


def test_peer_restate_prints_the_ratio() -> None:
    """The server comes from npm (benchmarks/restate), in a network namespace of its
    own: the test needs root and npm, as the script does."""
    if shutil.which("npm") is None or shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("peer_restate.py needs npm, unshare and root")
    out = run_script("peer_restate.py", "--orders", "20", "--window", "8", "--repeats", "1",
                     timeout=600)
    assert "restate server: restate-server " in out
    assert "stepsaga / Restate orders per second = " in out


def test_sqs_model_prints_the_prediction() -> None:
    out = run_script("sqs_model.py", "--orders", "20", "--window", "16", "--repeats", "1",
                     timeout=300)
    assert "SQS calls per order" in out
    for target in ("   100 orders/s:", " 1,000 orders/s:", "10,000 orders/s:"):
        assert target in out
    assert "figures: per-process " in out


@pytest.mark.emulator
def test_sqs_prints_calls_per_message_on_both_stores() -> None:
    out = run_script("sqs.py", "--orders", "10", "--repeats", "1", "--paced", "20",
                     timeout=600)
    for store in ("postgres", "sqlite"):
        assert f"{store}, at load" in out and f"{store}, paced (20 orders/s offered)" in out
    assert out.count("SQS calls per message  median") == 8


def test_memory_prints_rss_per_count_and_the_ratio() -> None:
    out = run_script("memory.py", "--counts", "10,200", "--orders", "20", "--repeats", "1")
    assert "RSS 200 waiting / 10 waiting = " in out


def test_telemetry_prints_the_cost_of_metrics_and_traces() -> None:
    out = run_script("telemetry.py", "--messages", "50", "--repeats", "1")
    assert "figures: metrics costs " in out
    assert "figures: metrics+traces costs " in out
