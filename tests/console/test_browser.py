"""The console in headless Chromium: sign in, open an order waiting for review, see its
timeline, approve the review, and see the order move on — against a real ManualReview
execution on the emulator and a worker running the saga and the review consumer.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make browser-deps`` installs them
as root). Set ``STEPSAGA_CONSOLE_SCREENSHOT=docs/img/console.png`` to refresh the
README's screenshot."""

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
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from bridge.console import ConsoleSettings, create_app
from core_saga.emulator import Emulator
from tests.console.support import ReviewedOrderSaga, ReviewRig, sqlite_url

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
APPROVER = "approver-token-456"

pytestmark = [
    pytest.mark.emulator, pytest.mark.timeout(240),
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
                     "--disable-gpu", "--window-size=1440,1100", "--hide-scrollbars"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def browse(base: str, order: str, screenshot: Path) -> dict[str, Any]:
    """The operator's session (blocking: runs in a thread beside the worker)."""
    from selenium.webdriver.common.by import By

    seen: dict[str, Any] = {}
    driver = chromium()
    driver.implicitly_wait(15)  # a click returns before the next page has loaded
    try:
        driver.get(f"{base}/orders/{order}")
        assert "Sign in" in driver.page_source  # 401: the login form
        driver.find_element(By.ID, "token").send_keys(APPROVER)
        driver.find_element(By.ID, "login").click()
        assert driver.find_element(By.ID, "state").text == "AwaitingReview"
        entries = driver.find_elements(By.CSS_SELECTOR, "#timeline tr.entry")
        seen["kinds_before"] = [e.get_attribute("data-kind") for e in entries]
        seen["text_before"] = driver.find_element(By.ID, "timeline").text
        seen["links"] = driver.find_element(By.ID, "links").text
        driver.save_screenshot(str(screenshot))
        seen["page_before"] = driver.page_source

        driver.find_element(By.CSS_SELECTOR, "#reviews input[name=comment]").send_keys(
            "known customer")
        driver.find_element(By.ID, "approve-1").click()
        seen["flash"] = driver.find_element(By.ID, "flash").text
        deadline = time.monotonic() + 60
        while driver.find_element(By.ID, "state").text != "Approved":
            assert time.monotonic() < deadline, "the order did not move on"
            time.sleep(0.5)
            driver.refresh()
        seen["text_after"] = driver.find_element(By.ID, "timeline").text
        seen["kinds_after"] = [e.get_attribute("data-kind") for e in driver.find_elements(
            By.CSS_SELECTOR, "#timeline tr.entry")]
        seen["page_after"] = driver.page_source
        driver.find_element(By.LINK_TEXT, "Pending reviews").click()
        seen["reviews_page"] = driver.page_source
    finally:
        driver.quit()
    return seen


async def test_an_operator_approves_a_review_in_the_browser(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    rig = ReviewRig(emulator, sqlite_url(tmp_path))
    await rig.start()
    try:
        order = f"order-{uuid.uuid4().hex[:6]}"
        arn, _ = await rig.drive_to_review(order)
        settings = ConsoleSettings(database_url=rig.database_url,
                                   console_tokens={APPROVER: {  # type: ignore[dict-item]
                                       "name": "ann", "roles": ["approver"]}},
                                   aws_endpoint_url=emulator.endpoint_url,
                                   aws_region=emulator.region)
        screenshot = tmp_path / "console.png"
        with serving(create_app(settings, sagas=[ReviewedOrderSaga])) as base:
            seen = await asyncio.to_thread(browse, base, order, screenshot)
        assert {"transition", "handoff", "supervisor"} <= set(seen["kinds_before"])
        assert "received OrderPlaced: Initial → AwaitingReview" in seen["text_before"]
        assert "review waiting for a person" in seen["text_before"]
        assert "DescribeExecution" in seen["links"] or arn in seen["links"]
        assert "review approved by ann" in seen["flash"]
        assert "decision" in seen["kinds_after"]
        assert "reviewer answered approved (by ann)" in seen["text_after"]
        assert "AwaitingReview → Approved" in seen["text_after"]
        assert "No review is waiting." in seen["reviews_page"]
        assert rig.reviews is not None
        token = (await rig.reviews.tokens_for(order))[0]
        for page in ("page_before", "page_after", "reviews_page"):
            assert token not in seen[page]
        assert screenshot.stat().st_size > 10_000
        wanted = os.environ.get("STEPSAGA_CONSOLE_SCREENSHOT")
        if wanted:
            Path(wanted).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(screenshot, wanted)
    finally:
        await rig.stop()
