"""The console's API and pages: the token rules (401, 403, the approver role), filters,
bad input, the order's detail, and approve/reject against a real ManualReview execution —
with the task token nowhere in what the console says or logs."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bridge.console import ConsoleSettings, create_app
from bridge.reviews import review_tasks
from core_saga.emulator import Emulator
from core_saga.persistence import InstanceRecord, SqlStore
from tests.console.support import (
    SAGA_TYPE,
    TRACE_ID,
    ReviewedOrderSaga,
    ReviewRig,
    await_for,
    sqlite_url,
)

VIEWER = "viewer-token-123"
APPROVER = "approver-token-456"
TOKENS = {VIEWER: "viewer", APPROVER: {"name": "ann", "roles": ["approver"]}}


def settings_for(url: str, **extra: object) -> ConsoleSettings:
    return ConsoleSettings(database_url=url, console_tokens=TOKENS,  # type: ignore[arg-type]
                           console_stuck_after_seconds=600, **extra)  # type: ignore[arg-type]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def seeded(tmp_path: Path) -> AsyncIterator[str]:
    url = sqlite_url(tmp_path)
    store = SqlStore.from_url(url)
    await store.create_schema()
    now = datetime.now(UTC)
    rows = [("fresh", "AwaitingReview", now, now),
            ("stuck", "AwaitingReview", now - timedelta(hours=5), now - timedelta(hours=2)),
            ("done", "Approved", now - timedelta(hours=9), now - timedelta(hours=8))]
    async with store.transaction() as tx:
        for cid, state, created, updated in rows:
            await tx.insert(InstanceRecord(SAGA_TYPE, cid, state, 1, {"handoffs": []},
                                           created, updated))
    await store.close()
    yield url


@pytest.fixture
async def client(seeded: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(seeded), sagas=[ReviewedOrderSaga])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://console.test") as made:
        yield made


async def test_the_token_rules(client: httpx.AsyncClient) -> None:
    some_review = f"/api/reviews/{uuid.uuid4()}/approve"
    for method, path in (("GET", "/api/orders"), ("GET", "/api/orders/fresh"),
                         ("GET", "/api/reviews"), ("POST", some_review)):
        anonymous = await client.request(method, path)
        assert anonymous.status_code == 401, path
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        wrong = await client.request(method, path, headers=auth("not-a-known-token"))
        assert wrong.status_code == 401, path
        basic = await client.request(method, path, headers={"Authorization": "Basic eDp5"})
        assert basic.status_code == 401, path
    assert (await client.get("/api/orders", headers=auth(VIEWER))).status_code == 200
    assert (await client.get("/api/reviews", headers=auth(VIEWER))).status_code == 200
    forbidden = await client.post(some_review, headers=auth(VIEWER))
    assert forbidden.status_code == 403
    assert "approver" in forbidden.json()["detail"]
    reject = await client.post(some_review.replace("approve", "reject"), headers=auth(VIEWER))
    assert reject.status_code == 403
    # The approver may view, and approve: this review does not exist.
    assert (await client.get("/api/orders", headers=auth(APPROVER))).status_code == 200
    missing = await client.post(some_review, headers=auth(APPROVER))
    assert missing.status_code == 404 and missing.json()["changed"] is False


async def test_the_html_pages_need_a_login(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 401 and "Sign in" in page.text
    bad = await client.post("/login", content="token=nope&next=/",
                            headers={"content-type": "application/x-www-form-urlencoded"})
    assert bad.status_code == 401 and "Unknown token" in bad.text
    good = await client.post("/login", content=f"token={VIEWER}&next=/orders/fresh",
                             headers={"content-type": "application/x-www-form-urlencoded"})
    assert good.status_code == 303 and good.headers["location"] == "/orders/fresh"
    assert "httponly" in good.headers["set-cookie"].lower()
    assert "samesite=strict" in good.headers["set-cookie"].lower()
    listing = await client.get("/")
    assert listing.status_code == 200 and "stuck" in listing.text
    assert (await client.get("/orders/fresh")).status_code == 200
    assert (await client.get("/orders/nobody")).status_code == 404
    refused = await client.post(f"/reviews/{uuid.uuid4()}/approve", content="next=/",
                                headers={"content-type": "application/x-www-form-urlencoded"})
    assert refused.status_code == 403  # a viewer cannot approve
    assert (await client.get("/?stuckAfter=abc")).status_code == 400
    offsite = await client.post("/login", content=f"token={VIEWER}&next=//evil.test/",
                                headers={"content-type": "application/x-www-form-urlencoded"})
    assert offsite.headers["location"] == "/"


async def test_filters_and_bad_input(client: httpx.AsyncClient) -> None:
    async def ids(query: str) -> list[str]:
        answer = await client.get(f"/api/orders{query}", headers=auth(VIEWER))
        assert answer.status_code == 200, answer.text
        return sorted(o["correlationId"] for o in answer.json()["orders"])

    assert await ids("") == ["done", "fresh", "stuck"]
    assert await ids("?state=AwaitingReview") == ["fresh", "stuck"]
    assert await ids("?stuck=true") == ["stuck"]  # Approved is terminal: never stuck
    assert await ids("?stuck=true&stuckAfter=36000") == []
    assert await ids("?stuck=false") == ["done", "fresh"]
    assert await ids("?olderThan=14400") == ["done", "stuck"]
    listed = (await client.get("/api/orders", headers=auth(VIEWER))).json()
    assert {"sagaType": SAGA_TYPE, "state": "AwaitingReview", "count": 2} in listed["counts"]
    for bad in ("/api/orders?stuckAfter=0", "/api/orders?limit=abc", "/api/orders?limit=0",
                "/api/orders?state=a%20b", "/api/orders?olderThan=-1",
                "/api/orders?stuck=perhaps", "/api/orders/bad%20id",
                "/api/reviews?status=maybe"):
        answer = await client.get(bad, headers=auth(VIEWER))
        assert answer.status_code == 422, bad
        assert answer.json()["detail"], bad
    wrong_id = await client.post("/api/reviews/not-a-uuid/approve", headers=auth(APPROVER))
    assert wrong_id.status_code == 422
    assert (await client.get("/api/orders/nobody", headers=auth(VIEWER))).status_code == 404


async def test_an_order_in_detail(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/orders/stuck", headers=auth(VIEWER))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["state"], body["stuck"], body["sagaType"]) == ("AwaitingReview", True,
                                                               SAGA_TYPE)
    assert "class AwaitingReview current" in body["graph"]
    assert body["timeline"]["entries"] == [] and body["links"]["executions"] == []
    spec = (await client.get("/openapi.json")).json()
    assert "/api/orders/{order_id}" in spec["paths"]


@pytest.mark.emulator
@pytest.mark.timeout(180)
async def test_approve_and_reject_through_the_api_against_real_executions(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    rig = ReviewRig(emulator, sqlite_url(tmp_path))
    await rig.start()
    app = create_app(settings_for(rig.database_url, aws_endpoint_url=emulator.endpoint_url,
                                  aws_region=emulator.region), sagas=[ReviewedOrderSaga])
    said: list[str] = []
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://console.test") as client:
            order, other = f"o-{uuid.uuid4().hex[:8]}", f"o-{uuid.uuid4().hex[:8]}"
            arn, review = await rig.drive_to_review(order)
            _, second = await rig.drive_to_review(other)

            pending = await client.get("/api/reviews", headers=auth(VIEWER))
            said.append(pending.text)
            assert {r["id"] for r in pending.json()["reviews"]} == {review.id, second.id}
            detail = await client.get(f"/api/orders/{order}", headers=auth(VIEWER))
            said.append(detail.text)
            body = detail.json()
            assert body["links"]["traceIds"] == [TRACE_ID]
            [execution] = body["links"]["executions"]
            assert execution["execution_arn"] == arn and execution["console_url"] is None
            assert execution["describe"]["status"] == "RUNNING"  # the emulator's answer
            kinds = {e["kind"] for e in body["timeline"]["entries"]}
            assert {"transition", "handoff", "supervisor", "published"} <= kinds
            said.append((await client.get(f"/orders/{order}", headers=auth(VIEWER))).text)

            approve = await client.post(f"/api/reviews/{review.id}/approve",
                                        json={"comment": "known customer"},
                                        headers=auth(APPROVER))
            said.append(approve.text)
            assert approve.status_code == 200
            assert approve.json()["changed"] is True and approve.json()["result"] == "approved"
            again = await client.post(f"/api/reviews/{review.id}/approve",
                                      headers=auth(APPROVER))
            said.append(again.text)
            assert again.status_code == 200 and again.json()["changed"] is False
            assert "already approved by ann" in again.json()["message"]

            reject = await client.post(f"/api/reviews/{second.id}/reject",
                                       json={"comment": "stolen card"}, headers=auth(APPROVER))
            said.append(reject.text)
            assert reject.json()["result"] == "rejected"

            async def state(cid: str, wanted: str) -> bool:
                return await rig.state_of(cid) == wanted

            await await_for(lambda: state(order, "Approved"), what="Approved")
            await await_for(lambda: state(other, "Rejected"), what="Rejected")
            await emulator_done(emulator, arn)
            detail = await client.get(f"/api/orders/{order}", headers=auth(VIEWER))
            said.append(detail.text)
            summaries = [e["summary"] for e in detail.json()["timeline"]["entries"]]
            assert any("reviewer answered approved (by ann)" in s for s in summaries)
            assert any("review approved by ann" in s for s in summaries)
            assert any("acknowledged the outcome" in s for s in summaries)
            said.append((await client.get(f"/orders/{order}", headers=auth(VIEWER))).text)
            said.append((await client.get("/reviews", headers=auth(VIEWER))).text)
            said.append((await client.get("/api/reviews?status=all",
                                          headers=auth(VIEWER))).text)
        assert rig.reviews is not None
        async with rig.reviews.store.transaction(readonly=True) as tx:
            tokens = (await tx.scalars(select(review_tasks.c.task_token))).all()
        assert len(tokens) == 2
        for token in tokens:
            assert all(token not in text for text in said)
            assert token not in caplog.text
    finally:
        await rig.stop()


async def emulator_done(emulator: Emulator, arn: str) -> None:
    import asyncio

    done = await asyncio.to_thread(emulator.wait_for_execution, arn)
    assert done["status"] == "SUCCEEDED"
