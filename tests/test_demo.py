"""`make demo` runs ``stepsaga demo``: the Order-to-Cash hybrid (saga, services, bridge,
supervisor workflows, ops console) on SQLite and the local emulator, every path walked.
The end-to-end test runs the real command in a subprocess, looks at the console while it
stays up, stops it with Ctrl-C, and checks the database it leaves behind on its own."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from decimal import Decimal
from importlib.metadata import entry_points
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from examples.order_to_cash.demo import PATHS, demo_orders
from examples.quickstart.demo import demo_orders as quickstart_orders
from examples.quickstart.demo import run_demo as run_quickstart_demo

STEPSAGA = str(Path(sys.executable).with_name("stepsaga"))
CANCEL_CODES = {"payment_declined", "inventory_unavailable", "shipping_deadline",
                "review_rejected", "review_timed_out", "shipping_abandoned"}


def _env() -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    env.pop("STEPSAGA_AWS_ENDPOINT_URL", None)  # its own emulator, as on a fresh machine
    env.pop("STEPSAGA_DEMO_TOKEN", None)
    return env


class Output:
    """The lines a process writes, read on a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._process = process
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text)
            if found:
                return found
            if self._process.poll() is not None:
                self._thread.join(5)
                found = re.search(pattern, self.text)
                if found:
                    return found
                break
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in the demo's output:\n{self.text}")


@pytest.mark.emulator
@pytest.mark.timeout(240)
def test_the_demo_walks_every_path_and_the_books_balance(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    started = time.monotonic()
    process = subprocess.Popen(
        [STEPSAGA, "demo", "--orders", "2", "--console-port", "0", "--keep-running",
         "--workdir", str(workdir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    output = Output(process)
    try:
        output.wait_for(r"the console stays up", timeout=150)
        seconds = time.monotonic() - started
        text = output.text
        assert "every order is terminal and the books balance" in text, text
        assert "terminal: 10/10 orders; books: 10/10 orders balance" in text, text
        assert re.search(r"^  Completed +4$", text, re.M), text
        for code in CANCEL_CODES:
            assert re.search(rf"^  Canceled \({code}\) +1$", text, re.M), code
        # The demo played the reviewer through ReviewService, clicks included.
        assert "review-approved-1: approved in review" in text
        assert "approved again → changed=False" in text
        assert "review-rejected-1: rejected in review" in text
        assert "a late approve after the timeout → expired" in text
        console_url, token = re.search(r"console: (http://127\.0\.0\.1:\d+) \(token (\S+)\)",
                                       text).groups()  # type: ignore[union-attr]
        assert f"{console_url}/orders/review-approved-1" in text  # the links

        # The console answers while the demo keeps running: pages and API need the token.
        with httpx.Client(base_url=console_url, timeout=20) as http:
            assert http.get("/orders/happy-01").status_code == 401
            bearer = {"Authorization": f"Bearer {token}"}
            page = http.get("/orders/review-approved-1", headers=bearer)
            assert page.status_code == 200, page.text
            assert "review-approved-1" in page.text and "Completed" in page.text
            detail = http.get("/api/orders/review-approved-1", headers=bearer).json()
            assert detail["state"] == "Completed"
            kinds = {entry["kind"] for entry in detail["timeline"]["entries"]}
            assert {"handoff", "decision", "transition"} <= kinds, kinds
            assert detail["links"]["executions"], detail["links"]
            listed = http.get("/api/orders", headers=bearer).json()
            assert len(listed["orders"]) == 10
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            code = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    output.wait_for(r"stopping…", timeout=5)
    assert code == 0, output.text
    assert seconds < 110, f"the demo took {seconds:.0f} s"
    _assert_database(workdir / "order_to_cash.db")


def _assert_database(path: Path) -> None:
    """Read what the demo left behind, without its code: every order terminal (in the
    order service and the saga), canceled ones with a code, and charges − refunds in the
    payment ledger equal to the amount of a completed order, 0 for a canceled one."""
    with sqlite3.connect(path) as db:
        orders = db.execute("SELECT order_id, status, amount, cancel_code FROM orders").fetchall()
        states = dict(db.execute(
            "SELECT correlation_id, state FROM saga_instances WHERE saga_type = 'OrderSaga'"
        ).fetchall())
        ledger = db.execute("SELECT order_id, kind, status, amount FROM payments").fetchall()
    assert len(orders) == 10
    net = {order_id: Decimal(0) for order_id, *_ in orders}
    for order_id, kind, status, amount in ledger:
        if (kind, status) == ("charge", "charged"):
            net[order_id] += Decimal(amount)
        elif (kind, status) == ("refund", "refunded"):
            net[order_id] -= Decimal(amount)
    codes = set()
    for order_id, status, amount, cancel_code in orders:
        assert status in ("Completed", "Canceled") and states[order_id] == status, order_id
        if status == "Completed":
            assert net[order_id] == Decimal(amount), order_id
        else:
            assert net[order_id] == 0 and cancel_code, order_id
            codes.add(cancel_code)
    assert codes == CANCEL_CODES


def test_the_demo_command_is_registered_and_has_help() -> None:
    (demo,) = [e for e in entry_points(group="stepsaga.cli") if e.name == "demo"]
    assert demo.value == "examples.order_to_cash.cli:register"
    shown = subprocess.run([STEPSAGA, "demo", "--help"], capture_output=True, text=True,
                           env=_env(), timeout=60)
    assert shown.returncode == 0, shown.stderr
    for option in ("--orders", "--console-port", "--keep-running", "--workdir"):
        assert option in shown.stdout


def test_the_quickstart_command_is_registered_beside_the_demo() -> None:
    (quick,) = [e for e in entry_points(group="stepsaga.cli") if e.name == "quickstart"]
    assert quick.value == "examples.quickstart.cli:register"
    shown = subprocess.run([STEPSAGA, "quickstart", "--help"], capture_output=True,
                           text=True, env=_env(), timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "article's saga" in shown.stdout and "--failures" in shown.stdout


def test_a_console_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([STEPSAGA, "demo", "--console-port", str(port), "--workdir",
                               str(tmp_path / "demo")], capture_output=True, text=True,
                              env=_env(), timeout=60)
    assert done.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in " ".join(done.stderr.split())
    assert not (tmp_path / "demo").exists()  # nothing was started or written


def test_bad_options_are_refused() -> None:
    for args in (["--orders", "-1"], ["--console-token", "short"]):
        done = subprocess.run([STEPSAGA, "demo", *args], capture_output=True, text=True,
                              env=_env(), timeout=60)
        assert done.returncode == 2, (args, done.stdout, done.stderr)


def test_the_demo_orders_cover_every_path() -> None:
    assert {o.path for o in demo_orders(1)} == set(PATHS)
    assert sum(o.path.key == "happy" for o in demo_orders(7)) == 7
    assert len({o.order_id for o in demo_orders(12)}) == 12 + len(PATHS) - 1


async def test_the_quickstart_demo_still_walks_its_paths(tmp_path: Path) -> None:
    """The small example (examples/quickstart) keeps its own demo."""
    output = Console(record=True, width=140)
    assert await run_quickstart_demo(workdir=tmp_path, happy=2, each_failure=1, console=output)
    assert "every order is terminal and the ledger balances" in output.export_text()
    assert {o.path for o in quickstart_orders(1, 1)} == {
        "completed", "payment declined", "inventory missing", "carrier down"}
