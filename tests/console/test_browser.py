"""The console in headless Chromium, as an operator uses it: sign in, find the one stuck
order among three hundred finished ones, open it, read why it is stuck, see its graph
(and its ManualReview execution's) with the current state highlighted, approve its
review with a comment (confirming first), watch the page move on by itself, reject
another order's review with a reason, and find both decisions in the audit log under
the reviewer's name — against real ManualReview executions on the emulator and a worker
running the saga and the review consumer.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make browser-deps`` installs them
as root). ``STEPSAGA_CONSOLE_SCREENSHOTS=docs/img`` writes the screenshots that
docs/console.md shows (``console-order.png``, ``console-graph.png``,
``console-orders.png``, ``console-review.png``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import update

from bridge.console import ConsoleSettings, create_app
from core_saga.emulator import Emulator
from core_saga.persistence import InstanceRecord, SqlStore
from core_saga.persistence._schema import saga_instances
from tests.console.support import SAGA_TYPE, ReviewedOrderSaga, ReviewRig, sqlite_url

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
APPROVER = "approver-token-456"
SHOTS = ("console-order.png", "console-graph.png", "console-orders.png", "console-review.png")

pytestmark = [
    pytest.mark.emulator, pytest.mark.timeout(300),
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="headless Chromium is not installed (/usr/bin/chromium and "
                              "/usr/bin/chromedriver): run `make browser-deps` as root, or "
                              "apt-get install chromium chromium-driver"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(app: Any) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "the console did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def chromium() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1480,1200", "--hide-scrollbars"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def until(check: Any, what: str, timeout: float = 60) -> Any:
    """Poll `check` until it answers something true (the page reloads itself)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except Exception:  # the page is reloading under us
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout} s"
        time.sleep(0.3)


def full_page(driver: Any, path: Path) -> None:
    """A screenshot of the whole page, not only the window."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1480, min(max(int(height) + 120, 900), 4000))
    driver.save_screenshot(str(path))
    driver.set_window_size(1480, 1200)


def operate(base: str, stuck: str, other: str, shots: Path) -> dict[str, Any]:
    """The operator's session (blocking: runs in a thread beside the worker)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    seen: dict[str, Any] = {}
    driver = chromium()
    driver.implicitly_wait(15)  # a click returns before the next page has loaded
    try:
        driver.get(f"{base}/")
        assert "Sign in" in driver.page_source  # 401: the sign-in form
        driver.find_element(By.ID, "token").send_keys(APPROVER)
        driver.find_element(By.ID, "login").click()
        seen["total"] = driver.find_element(By.ID, "total").text
        Select(driver.find_element(By.ID, "stuck-filter")).select_by_value("true")
        driver.find_element(By.ID, "apply").click()
        until(lambda: driver.find_element(By.ID, "total").text.startswith("1 order"),
              "the filter")
        seen["stuck_rows"] = [row.get_attribute("data-order") for row in
                              driver.find_elements(By.CSS_SELECTOR, "#orders tr.order")]
        full_page(driver, shots / "console-orders.png")
        driver.find_element(By.LINK_TEXT, stuck).click()

        # The order: where it is, why, and its graphs.
        seen["state"] = driver.find_element(By.ID, "state").text
        seen["stuck_badge"] = driver.find_element(By.ID, "stuck").text
        seen["why"] = driver.find_element(By.ID, "why").text
        seen["current"] = [n.get_attribute("data-state") for n in driver.find_elements(
            By.CSS_SELECTOR, "#saga-graph .node.current")]
        seen["execution_current"] = [n.get_attribute("data-state") for n in
                                     driver.find_elements(
                                         By.CSS_SELECTOR, ".execution-graph .node.current")]
        seen["timeline"] = driver.find_element(By.ID, "timeline").text
        seen["folded"] = len(driver.find_elements(By.CSS_SELECTOR, "tr.entry[data-folded]"))
        seen["page_before"] = driver.page_source
        full_page(driver, shots / "console-order.png")
        driver.find_element(By.ID, "saga-graph-card").screenshot(
            str(shots / "console-graph.png"))

        # Approve, with a comment, and confirm.
        driver.find_element(By.ID, "open-review-1").click()
        seen["review"] = driver.find_element(By.ID, "review-facts").text
        full_page(driver, shots / "console-review.png")
        driver.find_element(By.ID, "approve-comment").send_keys("known customer")
        driver.find_element(By.ID, "approve").click()
        seen["confirm"] = until(lambda: driver.find_element(By.TAG_NAME, "h1").text
                                if driver.find_elements(By.ID, "confirm") else None,
                                "the confirmation")
        driver.find_element(By.ID, "confirm").click()
        seen["flash"] = driver.find_element(By.ID, "flash").text
        # No click on reload: the page refreshes itself while the order can change.
        until(lambda: driver.find_element(By.ID, "state").text == "Approved",
              "the order moving on")
        seen["text_after"] = driver.find_element(By.ID, "timeline").text
        seen["kinds_after"] = [e.get_attribute("data-kind") for e in driver.find_elements(
            By.CSS_SELECTOR, "#timeline tr.entry")]
        seen["page_after"] = driver.page_source

        # Reject the other order's review, with a reason.
        driver.find_element(By.LINK_TEXT, "Pending reviews").click()
        driver.find_element(By.CSS_SELECTOR, f'tr[data-order="{other}"] a.open-review').click()
        driver.find_element(By.ID, "reject-reason").send_keys("stolen card")
        driver.find_element(By.ID, "reject").click()
        seen["confirm_reject"] = driver.find_element(By.ID, "confirm-reason").text
        driver.find_element(By.ID, "confirm").click()
        seen["flash_reject"] = driver.find_element(By.ID, "flash").text
        driver.find_element(By.LINK_TEXT, "Audit log").click()
        seen["audit"] = driver.find_element(By.ID, "audit").text
        driver.find_element(By.LINK_TEXT, "Pending reviews").click()
        until(lambda: driver.find_element(By.TAG_NAME, "h1").text == "Pending manual reviews",
              "the reviews page")
        seen["reviews_page"] = driver.page_source
        driver.find_element(By.ID, "logout").click()
        seen["after_logout"] = until(lambda: "Sign in" in driver.page_source
                                     and driver.page_source, "signing out")
    finally:
        driver.quit()
    return seen


async def seed_finished(url: str, count: int) -> None:
    """`count` orders that ended hours ago (approved or rejected)."""
    store = SqlStore.from_url(url)
    old = datetime.now(UTC) - timedelta(days=2)
    try:
        async with store.transaction() as tx:
            for n in range(count):
                state = "Approved" if n % 3 else "Rejected"
                await tx.insert(InstanceRecord(
                    SAGA_TYPE, f"done-{n:03d}", state, 3, {"handoffs": [], "amount": 100 + n},
                    old + timedelta(seconds=n), old + timedelta(seconds=n, minutes=5)))
    finally:
        await store.close()


async def backdate(url: str, order: str, hours: float) -> None:
    """Make `order` look untouched for `hours` (as if the reviewers were away)."""
    store = SqlStore.from_url(url)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(update(saga_instances).where(
                saga_instances.c.correlation_id == order).values(
                updated_at=datetime.now(UTC) - timedelta(hours=hours)))
    finally:
        await store.close()


async def test_an_operator_finds_a_stuck_order_and_decides_its_review(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    rig = ReviewRig(emulator, sqlite_url(tmp_path))
    await rig.start()
    try:
        stuck, other = f"order-{uuid.uuid4().hex[:6]}", f"order-{uuid.uuid4().hex[:6]}"
        arn, _ = await rig.drive_to_review(stuck)
        await rig.drive_to_review(other)
        await seed_finished(rig.database_url, 300)
        await backdate(rig.database_url, stuck, hours=3)
        settings = ConsoleSettings(database_url=rig.database_url,
                                   console_tokens={APPROVER: {  # type: ignore[dict-item]
                                       "name": "ann", "roles": ["approver"]}},
                                   aws_endpoint_url=emulator.endpoint_url,
                                   aws_region=emulator.region,
                                   console_refresh_seconds=2)
        shots = tmp_path / "shots"
        shots.mkdir()
        with serving(create_app(settings, sagas=[ReviewedOrderSaga])) as base:
            seen = await asyncio.to_thread(operate, base, stuck, other, shots)
        assert seen["total"].startswith("302 orders")
        assert seen["stuck_rows"] == [stuck]
        assert (seen["state"], seen["stuck_badge"]) == ("AwaitingReview", "stuck")
        assert "waiting for a person: a review is pending since" in seen["why"]
        assert "amount 2500 over the limit" in seen["why"]
        assert "the workflow gives up at" in seen["why"]
        assert seen["current"] == ["AwaitingReview"]
        assert seen["execution_current"] == ["AwaitReview"]
        assert "received OrderPlaced: Initial → AwaitingReview" in seen["timeline"]
        assert "review waiting for a person" in seen["timeline"]
        assert seen["folded"] >= 1  # the workflow's plumbing, folded
        assert "amount 2500 over the limit" in seen["review"]
        assert "2500.00 EUR" in seen["review"] and "LAMP-1" in seen["review"]
        assert "Deadline" in seen["review"] and "UTC" in seen["review"]
        assert seen["confirm"].startswith(f"Approve order {stuck}")
        assert "review approved by ann" in seen["flash"]
        assert "decision" in seen["kinds_after"]
        assert "reviewer answered approved (by ann)" in seen["text_after"]
        assert "AwaitingReview → Approved" in seen["text_after"]
        assert seen["confirm_reject"] == "stolen card"
        assert "review rejected by ann" in seen["flash_reject"]
        assert "ann reject" in seen["audit"] and "stolen card" in seen["audit"]
        assert "ann approve" in seen["audit"] and "known customer" in seen["audit"]
        assert "No review is waiting." in seen["reviews_page"]
        assert "Sign in" in seen["after_logout"]
        assert rig.reviews is not None
        for order in (stuck, other):
            token = (await rig.reviews.tokens_for(order))[0]
            for page in ("page_before", "page_after", "reviews_page"):
                assert token not in seen[page]
        for name in SHOTS:
            assert (shots / name).stat().st_size > 10_000, name
        wanted = os.environ.get("STEPSAGA_CONSOLE_SCREENSHOTS")
        if wanted:
            Path(wanted).mkdir(parents=True, exist_ok=True)
            for name in SHOTS:
                shutil.copyfile(shots / name, Path(wanted) / name)
        assert arn
    finally:
        await rig.stop()
