"""Each attack on the console and the intake API that a review found, tried for real and
refused: cross-site requests, framing and sniffing, stolen or forged sessions, password
guessing, secrets in output and logs, hostile data in terminals and databases, another
client's idempotency key, oversized bodies; and outages answered with a page that says
what to do, not a 500."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from pydantic import ValidationError
from sqlalchemy import update
from typer.testing import CliRunner

from bridge.cli import register
from bridge.console import ConsoleSettings, create_app
from bridge.console._auth import console_sessions
from bridge.contracts import ReviewTask
from bridge.reviews import ReviewStore, StepFunctions
from core_saga import AwsConfig, WorkerSettings
from core_saga.emulator import Emulator
from core_saga.persistence import HistoryRecord, InstanceRecord, SagaStore, SqlStore
from examples.order_to_cash.orders import create_app as create_orders_app
from tests.console.support import (
    FORM,
    ORIGIN,
    SAGA_TYPE,
    ReviewedOrderSaga,
    bearer,
    csrf_of,
    form,
    sign_in,
    sqlite_url,
)
from tests.order_to_cash.support import start_order_to_cash

VIEWER = "viewer-token-123"
APPROVER = "approver-token-456"
TOKENS = {VIEWER: "vera:viewer", APPROVER: "ann:approver"}
EVIL = "https://evil.example"
ORDER: dict[str, Any] = {
    "customerId": "c-1", "currency": "EUR", "amount": "33.00",
    "lines": [{"sku": "BOOK-1", "quantity": 2, "unitPrice": "12.50"},
              {"sku": "MUG-1", "quantity": 1, "unitPrice": "8.00"}]}


def settings_for(url: str, **extra: Any) -> ConsoleSettings:
    return ConsoleSettings(database_url=url, **{"console_tokens": TOKENS, **extra})


async def seed(url: str) -> str:
    """An order waiting for review; the review's id."""
    store = SqlStore.from_url(url)
    await store.create_schema()
    now = datetime.now(UTC)
    async with store.transaction() as tx:
        await tx.insert(InstanceRecord(SAGA_TYPE, "o-1", "AwaitingReview", 1,
                                       {"handoffs": []}, now, now))
    reviews = ReviewStore.open(store)
    await reviews.create_table()
    review = await reviews.record(ReviewTask(
        handoff_id="h-1", correlation_id="o-1", saga_type=SAGA_TYPE, reason="big",
        payload={}, escalated=False,
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:m:x",
        task_token="secret-task-token"), now)
    await store.close()
    return review


@pytest.fixture
async def url(tmp_path: Path) -> str:
    made = sqlite_url(tmp_path)
    await seed(made)
    return made


@pytest.fixture
async def client(url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(url), sagas=[ReviewedOrderSaga])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=ORIGIN) as made:
        yield made


# -- 1. cross-site requests ------------------------------------------------------------------

async def test_a_cross_site_json_decision_riding_the_session_cookie_is_refused(
        client: httpx.AsyncClient) -> None:
    csrf = await sign_in(client, APPROVER)
    approve = f"/api/reviews/{uuid.uuid4()}/approve"
    # The classic simple request: text/plain from another site, the cookie attached.
    simple = await client.post(approve, content='{"comment": "x"}',
                               headers={"content-type": "text/plain", "origin": EVIL})
    assert simple.status_code == 403 and "cross-site" in simple.json()["detail"]
    no_token = await client.post(approve, json={}, headers={"origin": ORIGIN})
    assert no_token.status_code == 403 and "CSRF" in no_token.json()["detail"]
    foreign = await client.post(approve, json={}, headers={"origin": EVIL,
                                                           "x-csrf-token": csrf})
    assert foreign.status_code == 403
    plain = await client.post(approve, content="{}", headers={
        "origin": ORIGIN, "x-csrf-token": csrf, "content-type": "text/plain"})
    assert plain.status_code == 415
    # The console's own page, with its token, gets through (to a review that is not there).
    mine = await client.post(approve, json={}, headers={"origin": ORIGIN,
                                                        "x-csrf-token": csrf})
    assert mine.status_code == 404


async def test_forms_refuse_a_null_missing_or_foreign_origin_and_a_missing_token(
        client: httpx.AsyncClient, url: str) -> None:
    csrf = await sign_in(client, APPROVER)
    review = (await client.get("/api/reviews", headers=bearer(VIEWER))).json()["reviews"][0]
    action = f"/reviews/{review['id']}/approve"
    fields = form({"csrf_token": csrf, "confirm": "yes"})
    kind = {"content-type": "application/x-www-form-urlencoded"}
    for headers in ({**kind, "origin": "null"}, kind, {**kind, "origin": EVIL},
                    {**kind, "referer": f"{EVIL}/page"}):
        refused = await client.post(action, content=fields, headers=headers)
        assert refused.status_code == 403, headers
    stale = await client.post(action, content=form({"confirm": "yes"}), headers=FORM)
    assert stale.status_code == 403 and "CSRF" in stale.text
    # Same origin by Referer (no Origin) is the console's own page: it asks to confirm.
    asked = await client.post(action, content=form({"csrf_token": csrf}),
                              headers={**kind, "referer": f"{ORIGIN}/reviews"})
    assert asked.status_code == 200 and "Yes, approve" in asked.text
    still = (await client.get("/api/reviews", headers=bearer(VIEWER))).json()["reviews"]
    assert [r["status"] for r in still] == ["pending"]


async def test_the_sign_in_form_refuses_cross_site_posts(client: httpx.AsyncClient) -> None:
    fields = form({"token": APPROVER, "next": "/"})
    kind = {"content-type": "application/x-www-form-urlencoded"}
    for headers in ({**kind, "origin": EVIL}, {**kind, "origin": "null"}, kind):
        refused = await client.post("/login", content=fields, headers=headers)
        assert refused.status_code == 403, headers
        assert "set-cookie" not in refused.headers


# -- 2. headers --------------------------------------------------------------------------------

async def test_every_answer_sends_the_security_headers_and_nothing_loads_from_elsewhere(
        client: httpx.AsyncClient) -> None:
    await sign_in(client, APPROVER)
    review = (await client.get("/api/reviews", headers=bearer(VIEWER))).json()["reviews"][0]
    pages = ["/", "/orders/o-1", "/reviews", f"/reviews/{review['id']}", "/audit", "/login"]
    for path in pages:
        answer = await client.get(path)
        assert answer.status_code == 200, path
        headers = answer.headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert "frame-ancestors 'none'" in csp and headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["cache-control"] == "no-store", path
        html = answer.text
        assert not re.search(r"<script(?![^>]*\bsrc=\"/static/)", html), path  # no inline
        assert " style=" not in html and "<style" not in html, path
        assert not re.search(r"(src|href)=\"(https?:)?//", html.replace(
            'href="https://', "")), path
    api = await client.get("/api/orders", headers=bearer(VIEWER))
    assert api.headers["cache-control"] == "no-store"
    for docs in ("/docs", "/redoc"):
        assert (await client.get(docs)).status_code == 404  # they would load a CDN
    assert (await client.get("/openapi.json")).status_code == 200
    assert (await client.get("/static/console.js")).status_code == 200


# -- 3. sessions -------------------------------------------------------------------------------

async def test_a_session_is_signed_expires_and_dies_with_its_token(url: str) -> None:
    app = create_app(settings_for(url), sagas=[ReviewedOrderSaga])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=ORIGIN) as client:
        await sign_in(client, VIEWER)
        cookie = client.cookies["stepsaga_session"]
        assert VIEWER not in cookie
        client.cookies.clear()
        client.cookies["stepsaga_session"] = cookie[:-2] + ("AA" if cookie[-2:] != "AA"
                                                             else "BB")
        assert (await client.get("/")).status_code == 401  # tampered
        client.cookies["stepsaga_session"] = VIEWER
        assert (await client.get("/")).status_code == 401  # the token is not a session
        client.cookies["stepsaga_session"] = cookie
        assert (await client.get("/")).status_code == 200
        reviews = ReviewStore.open(url)
        async with reviews.store.transaction() as tx:  # the session runs out
            await tx.execute(update(console_sessions).values(
                expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        await reviews.close()
        assert (await client.get("/")).status_code == 401
    # Another console process (another key) does not honour it; nor does one where the
    # token is gone from the settings.
    other = create_app(settings_for(url, console_tokens={APPROVER: "ann:approver"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other),
                                 base_url=ORIGIN) as client:
        await sign_in(client, APPROVER)
        kept = client.cookies["stepsaga_session"]
    secret = "s" * 40
    for tokens in ({APPROVER: "ann:approver"}, {"another-token-789": "bob:approver"}):
        app = create_app(settings_for(url, console_tokens=tokens,
                                      console_session_secret=secret))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=ORIGIN) as client:
            if tokens.get(APPROVER):
                await sign_in(client, APPROVER)
                kept = client.cookies["stepsaga_session"]
                assert (await client.get("/")).status_code == 200
            else:
                client.cookies["stepsaga_session"] = kept
                assert (await client.get("/")).status_code == 401


async def test_the_cookie_is_secure_behind_a_trusted_tls_proxy(url: str) -> None:
    trusting = create_app(settings_for(url, console_trusted_proxies=["127.0.0.1"]))
    https = {**FORM, "origin": "https://console.test", "x-forwarded-proto": "https"}
    body = form({"token": VIEWER, "next": "/"})
    transport = httpx.ASGITransport(app=trusting, client=("127.0.0.1", 5555))
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
        answer = await client.post("/login", content=body, headers=https)
        assert answer.status_code == 303 and "secure" in answer.headers["set-cookie"].lower()
        assert "strict-transport-security" in answer.headers
    # The same headers from a peer that is not a trusted proxy are not believed.
    stranger = httpx.ASGITransport(app=trusting, client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=stranger, base_url=ORIGIN) as client:
        answer = await client.post("/login", content=body, headers=https)
        assert answer.status_code == 403  # https origin, http request: cross-site
    plain = create_app(settings_for(url))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=plain),
                                 base_url=ORIGIN) as client:
        answer = await client.post("/login", content=body, headers=FORM)
        assert "secure" not in answer.headers["set-cookie"].lower()


async def test_failed_sign_ins_are_limited(client: httpx.AsyncClient) -> None:
    for _ in range(5):  # the default: 5 failures in 5 minutes per address
        wrong = await client.post("/login", content=form({"token": "guess-1234"}),
                                  headers=FORM)
        assert wrong.status_code == 401
    blocked = await client.post("/login", content=form({"token": APPROVER}), headers=FORM)
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text
    api = await client.get("/api/orders", headers=bearer(APPROVER))
    assert api.status_code == 429 and api.headers["retry-after"] == "300"


# -- 4. secrets never printed --------------------------------------------------------------

@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command()
    def graph() -> None:  # a core command, so that typer keeps subcommand names
        """(stand-in)"""

    register(app)
    return app


def test_the_console_prints_no_password_and_no_token(cli: typer.Typer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(app))
    runner = CliRunner()
    url = "postgresql://ops:hunter2-db-password@db.internal:5432/orders"
    started = runner.invoke(cli, ["console", "--database-url", url], env={
        "STEPSAGA_CONSOLE_TOKENS": '{"a-long-secret-token": "ann:approver"}',
        "COLUMNS": "200"})
    assert started.exit_code == 0, started.output
    assert served and "hunter2" not in started.output
    assert "postgresql://ops:***@db.internal:5432/orders" in started.output
    short = runner.invoke(cli, ["console"], env={
        "STEPSAGA_CONSOLE_TOKENS": '{"tiny7ab": "ann:approver"}', "COLUMNS": "200"})
    assert short.exit_code == 1 and "shorter than 8 characters" in short.output
    assert "tiny7ab" not in short.output
    role_only = runner.invoke(cli, ["console"], env={
        "STEPSAGA_CONSOLE_TOKENS": '{"a-long-secret-token": "approver"}', "COLUMNS": "200"})
    assert role_only.exit_code == 1 and "the person's name" in role_only.output
    assert "a-long-secret-token" not in role_only.output


def test_settings_never_show_a_token_or_a_password() -> None:
    settings = ConsoleSettings(console_tokens={"a-long-secret-token": "ann:approver"},
                               console_session_secret="x" * 40)  # type: ignore[arg-type]
    assert "a-long-secret-token" not in repr(settings) and "xxxx" not in repr(settings)
    with pytest.raises(ValidationError) as bad:
        ConsoleSettings(console_tokens={"short": "ann:approver"})  # type: ignore[arg-type]
    assert "short'" not in str(bad.value)
    with pytest.raises(ValidationError) as worker:
        WorkerSettings(database_url="mysql://ops:hunter2@db/orders")
    assert "hunter2" not in str(worker.value) and "ops:***@db" in str(worker.value)


@pytest.mark.emulator
async def test_task_tokens_stay_out_of_the_sdk_debug_logs(
        emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = "AQCEAAAAKgAAAAMAAAAAAAAAA" + uuid.uuid4().hex + "=="
    sfn = StepFunctions(AwsConfig(region=emulator.region, endpoint_url=emulator.endpoint_url))
    with pytest.raises(Exception, match="no longer accepts"):
        await sfn.send_task_success(token, '{"decision": "approved"}')
    sqs = emulator.boto3_client("sqs")
    queue = sqs.create_queue(QueueName=f"tokens-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"message": {"taskToken": token}}))
    sqs.receive_message(QueueUrl=queue)
    assert "SendTaskSuccess" in caplog.text and "ReceiveMessage" in caplog.text
    assert token not in caplog.text


# -- 5. hostile data outside HTML ----------------------------------------------------------

def test_orders_show_prints_hostile_data_as_text(cli: typer.Typer, tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    hostile = "[red]bold[/red] \x1b[2J\x1b]0;pwned\x07 \u202eevil"

    async def prepare() -> None:
        store = SqlStore.from_url(url)
        await store.create_schema()
        now = datetime.now(UTC)
        async with store.transaction() as tx:
            await tx.insert(InstanceRecord(SAGA_TYPE, "o-1", hostile, 1, {}, now, now))
            await tx.add_history([HistoryRecord(SAGA_TYPE, "o-1", "Placed", "Initial",
                                                hostile, "m-1", f"urn:x:{hostile}:v1", now)])
        await store.close()

    asyncio.run(prepare())
    shown = CliRunner().invoke(cli, ["orders", "show", "o-1", "--database-url", url,
                                     "--no-aws"], env={"COLUMNS": "300"})
    assert shown.exit_code == 0, shown.output
    assert "\x1b" not in shown.output and "\x07" not in shown.output
    assert "\u202e" not in shown.output
    assert "[red]bold[/red]" in shown.output  # markup shown, not obeyed
    assert "\\x1b[2J" in shown.output


@pytest.fixture
async def shop(sqlite_store: SagaStore) -> AsyncIterator[httpx.AsyncClient]:
    store = sqlite_store
    app = await start_order_to_cash(store)
    api = create_orders_app(app.orders, api_keys={"key-of-client-a-123": "client-a",
                                                  "key-of-client-b-456": "client-b"})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api),
                                 base_url="http://shop") as made:
        yield made


A = {"X-API-Key": "key-of-client-a-123"}
B = {"X-API-Key": "key-of-client-b-456"}


async def test_control_characters_are_refused_naming_the_field(
        shop: httpx.AsyncClient) -> None:
    for field, value, where in (("customerId", "c-\x00-1", "customerId"),
                                ("riskFlags", ["ok", "bad\x1b[31m"], "riskFlags[1]"),
                                ("customerId", "   ", "customerId")):
        answer = await shop.post("/orders", json={**ORDER, field: value}, headers=A)
        assert answer.status_code == 422, (field, answer.text)
        assert where in [p["field"] for p in answer.json()["detail"]], answer.text
    assert (await shop.get("/orders/a%00b", headers=A)).status_code == 422


async def test_idempotency_keys_and_orders_belong_to_their_client(
        shop: httpx.AsyncClient) -> None:
    assert (await shop.post("/orders", json=ORDER)).status_code == 401
    assert (await shop.post("/orders", json=ORDER, headers={"X-API-Key": "guess"})
            ).status_code == 401
    first = await shop.post("/orders", json=ORDER, headers={**A, "Idempotency-Key": "k-1"})
    assert first.status_code == 202
    order_id = first.json()["orderId"]
    again = await shop.post("/orders", json=ORDER, headers={**A, "Idempotency-Key": "k-1"})
    assert again.json() == {**first.json(), "replayed": True}
    # Client B, the same key and body: its own new order, never A's.
    theirs = await shop.post("/orders", json=ORDER, headers={**B, "Idempotency-Key": "k-1"})
    assert theirs.status_code == 202 and theirs.json()["replayed"] is False
    assert theirs.json()["orderId"] != order_id
    assert (await shop.get(f"/orders/{order_id}", headers=B)).status_code == 404
    assert (await shop.get(f"/orders/{order_id}", headers=A)).status_code == 200
    blank = await shop.post("/orders", json=ORDER, headers={**A, "Idempotency-Key": "  "})
    assert blank.status_code == 422


async def test_big_bodies_extra_decimals_and_blank_ids_are_refused(
        shop: httpx.AsyncClient) -> None:
    huge = await shop.post("/orders", content=b"{" + b" " * 70_000 + b"}", headers={
        **A, "content-type": "application/json"})
    assert huge.status_code == 413
    for amount, currency, lines in (
            ("33.001", "EUR", ORDER["lines"]),
            ("100.0", "JPY", [{"sku": "BOOK-1", "quantity": 1, "unitPrice": "100"}])):
        answer = await shop.post("/orders", json={**ORDER, "amount": amount,
                                                  "currency": currency, "lines": lines},
                                 headers=A)
        assert answer.status_code == 422, amount
        assert "amount" in [p["field"] for p in answer.json()["detail"]]
        assert "more decimal places" in answer.text


# -- 7. failures are pages ---------------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_aws_unreachable_is_a_clear_answer_and_the_review_stays_pending(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    app = create_app(settings_for(url, aws_endpoint_url=f"http://127.0.0.1:{_closed_port()}"),
                     sagas=[ReviewedOrderSaga])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=ORIGIN) as client:
        review = (await client.get("/api/reviews", headers=bearer(VIEWER))).json()[
            "reviews"][0]["id"]
        api = await client.post(f"/api/reviews/{review}/approve", headers=bearer(APPROVER))
        assert api.status_code == 503
        assert "Step Functions cannot be reached" in api.json()["detail"]
        assert "still pending" in api.json()["detail"]
        csrf = await sign_in(client, APPROVER)
        page = await client.get("/orders/o-1")  # renders; says AWS did not answer
        assert page.status_code == 200 and "Step Functions did not answer" in page.text
        clicked = await client.post(f"/reviews/{review}/approve", headers=FORM,
                                    content=form({"csrf_token": csrf, "confirm": "yes"}))
        assert clicked.status_code == 503 and "Step Functions cannot be reached" in clicked.text
        still = (await client.get("/api/reviews", headers=bearer(VIEWER))).json()["reviews"]
        assert [r["id"] for r in still] == [review]  # nothing was decided
        audit = (await client.get("/api/audit", headers=bearer(VIEWER))).json()["entries"]
        assert [(e["actor"], e["outcome"]) for e in audit] == [("ann", "failed"),
                                                               ("ann", "failed")]
        assert "secret-task-token" not in page.text + clicked.text + api.text


async def test_a_wrong_or_unmigrated_database_is_a_page_saying_what_to_do(
        tmp_path: Path) -> None:
    typo = tmp_path / "typo.db"
    empty = tmp_path / "empty.db"
    empty.touch()
    for database, says in ((typo, "no SQLite database at"),
                           (empty, "has no stepsaga tables")):
        app = create_app(settings_for(f"sqlite+aiosqlite:///{database}"))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=ORIGIN) as client:
            api = await client.get("/api/orders", headers=bearer(VIEWER))
            assert api.status_code == 503 and says in api.json()["detail"], api.text
            page = await client.post("/login", content=form({"token": VIEWER}),
                                     headers=FORM)
            assert page.status_code == 503 and says in page.text
            assert "stepsaga migrate" in page.text or "STEPSAGA_DATABASE_URL" in page.text
    assert not typo.exists()


async def test_a_review_page_and_a_decision_show_no_token(client: httpx.AsyncClient) -> None:
    csrf = await sign_in(client, APPROVER)
    review = (await client.get("/api/reviews", headers=bearer(VIEWER))).json()["reviews"][0]
    texts = [(await client.get(p)).text for p in ("/", "/reviews", f"/reviews/{review['id']}",
                                                  "/orders/o-1")]
    texts.append((await client.post(f"/reviews/{review['id']}/reject", headers=FORM,
                                    content=form({"csrf_token": csrf, "reason": "x"}))).text)
    assert all("secret-task-token" not in text for text in texts)
    assert csrf_of(texts[0]) == csrf


def test_api_keys_from_the_environment_are_checked_without_showing_them(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from examples.order_to_cash.app import parse_args
    from examples.order_to_cash.orders.api import api_keys_from_env

    assert api_keys_from_env({}) == {}
    assert api_keys_from_env({"STEPSAGA_ORDERS_API_KEYS": '{"key-of-client-a-123": "a"}'}
                             ) == {"key-of-client-a-123": "a"}
    for bad, says in (('{"short": "a"}', "API key #1 must be 16 to 200"),
                      ('{"key-of-client-a-123": " "}', "must not be blank"),
                      ('["x"]', "must be {"), ("{nope", "not JSON")):
        with pytest.raises(ValueError, match=re.escape(says)) as error:
            api_keys_from_env({"STEPSAGA_ORDERS_API_KEYS": bad})
        assert "key-of-client" not in str(error.value) and "short" not in str(error.value)
    monkeypatch.setenv("STEPSAGA_ORDERS_API_KEYS", '{"tiny": "shop"}')
    with pytest.raises(SystemExit):
        parse_args([])
    assert "API key #1" in capsys.readouterr().err
