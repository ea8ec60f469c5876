"""The console's API and pages: the token and session rules, filters done in the
database, bad input, the order's detail (why it is where it is, its graph), decisions
with confirmation and their audit, and approve/reject against real ManualReview
executions — with the task token nowhere in what the console says or logs."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bridge.console import ConsoleSettings, create_app
from bridge.contracts import ReviewTask
from bridge.reviews import ReviewStore, review_tasks
from core_saga.emulator import Emulator
from core_saga.persistence import HistoryRecord, InstanceRecord, SqlStore
from tests.console.support import (
    FORM,
    ORIGIN,
    SAGA_TYPE,
    TRACE_ID,
    ReviewedOrderSaga,
    ReviewRig,
    await_for,
    bearer,
    csrf_of,
    form,
    sign_in,
    sqlite_url,
)

VIEWER = "viewer-token-123"
APPROVER = "approver-token-456"
TOKENS = {VIEWER: "vera:viewer", APPROVER: {"name": "ann", "roles": ["approver"]}}


def settings_for(url: str, **extra: object) -> ConsoleSettings:
    return ConsoleSettings(database_url=url, console_tokens=TOKENS,  # type: ignore[arg-type]
                           console_stuck_after_seconds=600, **extra)  # type: ignore[arg-type]


@pytest.fixture
async def seeded(tmp_path: Path) -> AsyncIterator[str]:
    url = sqlite_url(tmp_path)
    store = SqlStore.from_url(url)
    await store.create_schema()
    now = datetime.now(UTC)
    rows = [("fresh", "AwaitingReview", now, now),
            ("stuck", "AwaitingReview", now - timedelta(hours=5), now - timedelta(hours=2)),
            ("done", "Approved", now - timedelta(hours=9), now - timedelta(hours=8)),
            ("odd id/with spaces & ü", "AwaitingReview", now, now)]
    async with store.transaction() as tx:
        for cid, state, created, updated in rows:
            await tx.insert(InstanceRecord(SAGA_TYPE, cid, state, 1,
                                           {"handoffs": [], "amount": 2500}, created, updated))
        await tx.add_history([HistoryRecord(SAGA_TYPE, "stuck", "OrderPlaced", "Initial",
                                            "AwaitingReview", "m-1", "urn:x:OrderPlaced:v1",
                                            now - timedelta(hours=2))])
    await store.close()
    yield url


@pytest.fixture
async def client(seeded: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(seeded), sagas=[ReviewedOrderSaga])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=ORIGIN) as made:
        yield made


async def test_the_token_rules(seeded: str) -> None:
    # Fifteen wrong tokens on purpose: more than the default limit on failed sign-ins.
    app = create_app(settings_for(seeded, console_login_attempts=50), sagas=[ReviewedOrderSaga])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=ORIGIN) as client:
        await _token_rules(client)


async def _token_rules(client: httpx.AsyncClient) -> None:
    some_review = f"/api/reviews/{uuid.uuid4()}/approve"
    for method, path in (("GET", "/api/orders"), ("GET", "/api/orders/fresh"),
                         ("GET", "/api/reviews"), ("POST", some_review),
                         ("GET", "/api/audit")):
        anonymous = await client.request(method, path)
        assert anonymous.status_code == 401, path
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        wrong = await client.request(method, path, headers=bearer("not-a-known-token"))
        assert wrong.status_code == 401, path
        basic = await client.request(method, path, headers={"Authorization": "Basic eDp5"})
        assert basic.status_code == 401, path
    assert (await client.get("/api/orders", headers=bearer(VIEWER))).status_code == 200
    assert (await client.get("/api/reviews", headers=bearer(VIEWER))).status_code == 200
    forbidden = await client.post(some_review, headers=bearer(VIEWER))
    assert forbidden.status_code == 403
    assert "vera lacks the approver role" in forbidden.json()["detail"]
    reject = await client.post(some_review.replace("approve", "reject"),
                               json={"reason": "no"}, headers=bearer(VIEWER))
    assert reject.status_code == 403
    # The approver may view, and approve: this review does not exist.
    assert (await client.get("/api/orders", headers=bearer(APPROVER))).status_code == 200
    missing = await client.post(some_review, headers=bearer(APPROVER))
    assert missing.status_code == 404 and missing.json()["changed"] is False
    no_reason = await client.post(some_review.replace("approve", "reject"), json={},
                                  headers=bearer(APPROVER))
    assert no_reason.status_code == 422 and "reason" in no_reason.text
    blank = await client.post(some_review.replace("approve", "reject"), json={"reason": "  "},
                              headers=bearer(APPROVER))
    assert blank.status_code == 422


async def test_signing_in_opens_a_session_and_signing_out_ends_it(
        client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 401 and "Sign in" in page.text
    bad = await client.post("/login", content=form({"token": "nope", "next": "/"}),
                            headers=FORM)
    assert bad.status_code == 401 and "Unknown token" in bad.text
    good = await client.post("/login", content=form({"token": VIEWER,
                                                     "next": "/orders/fresh"}), headers=FORM)
    assert good.status_code == 303 and good.headers["location"] == "/orders/fresh"
    cookie = good.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert VIEWER not in cookie  # the session, not the token
    listing = await client.get("/")
    assert listing.status_code == 200 and "stuck" in listing.text
    assert "vera" in listing.text
    assert (await client.get("/orders/fresh")).status_code == 200
    assert (await client.get("/orders/nobody")).status_code == 404
    refused = await client.post(f"/reviews/{uuid.uuid4()}/approve",
                                content=form({"csrf_token": csrf_of(listing.text)}),
                                headers=FORM)
    assert refused.status_code == 403  # a viewer cannot approve
    assert (await client.get("/?stuckAfter=abc")).status_code == 400
    offsite = await client.post("/login", content=form({"token": VIEWER,
                                                        "next": "//evil.test/"}), headers=FORM)
    assert offsite.headers["location"] == "/"
    kept = dict(client.cookies)
    out = await client.post("/logout", content=form({"csrf_token": csrf_of(
        (await client.get("/")).text)}), headers=FORM)
    assert out.status_code == 303
    assert (await client.get("/")).status_code == 401
    # The old cookie was revoked, not only forgotten by this browser.
    client.cookies.update(kept)
    assert (await client.get("/")).status_code == 401


async def test_filters_are_done_in_the_database(client: httpx.AsyncClient) -> None:
    async def ids(query: str) -> list[str]:
        answer = await client.get(f"/api/orders{query}", headers=bearer(VIEWER))
        assert answer.status_code == 200, answer.text
        return sorted(o["correlationId"] for o in answer.json()["orders"])

    everyone = ["done", "fresh", "odd id/with spaces & ü", "stuck"]
    assert await ids("") == everyone
    assert await ids("?state=AwaitingReview") == ["fresh", "odd id/with spaces & ü", "stuck"]
    assert await ids("?stuck=true") == ["stuck"]  # Approved is final: never stuck
    assert await ids("?stuck=true&stuckAfter=36000") == []
    assert await ids("?stuck=false") == ["done", "fresh", "odd id/with spaces & ü"]
    assert await ids("?final=true") == ["done"]
    assert await ids("?olderThan=14400") == ["done", "stuck"]
    assert await ids("?q=FRE") == ["fresh"]
    assert await ids("?q=%20") == ["odd id/with spaces & ü"]
    listed = (await client.get("/api/orders?limit=2&sort=id", headers=bearer(VIEWER))).json()
    assert listed["total"] == 4 and [o["correlationId"] for o in listed["orders"]] == [
        "done", "fresh"]
    assert {"sagaType": SAGA_TYPE, "state": "AwaitingReview", "count": 3,
            "final": False} in listed["counts"]
    assert listed["columns"] == ["Amount"]
    assert listed["orders"][0]["summary"] == {"Amount": "2500"}
    second = (await client.get("/api/orders?limit=2&offset=2&sort=id",
                               headers=bearer(VIEWER))).json()
    assert [o["correlationId"] for o in second["orders"]] == ["odd id/with spaces & ü",
                                                              "stuck"]
    for bad in ("/api/orders?stuckAfter=0", "/api/orders?limit=abc", "/api/orders?limit=0",
                "/api/orders?state=a%20b", "/api/orders?olderThan=-1",
                "/api/orders?stuck=perhaps", "/api/orders?sort=random", "/api/orders?q=",
                "/api/reviews?status=maybe"):
        answer = await client.get(bad, headers=bearer(VIEWER))
        assert answer.status_code == 422, bad
        assert answer.json()["detail"], bad
    wrong_id = await client.post("/api/reviews/not-a-uuid/approve", headers=bearer(APPROVER))
    assert wrong_id.status_code == 422
    assert (await client.get("/api/orders/nobody", headers=bearer(VIEWER))).status_code == 404


async def test_the_orders_page_pages_and_searches(client: httpx.AsyncClient) -> None:
    await sign_in(client, VIEWER)
    page = await client.get("/?stuck=true")
    assert page.status_code == 200
    rows = re.findall(r'<tr class="order" data-order="([^"]+)"', page.text)
    assert rows == ["stuck"]
    searched = await client.get("/?q=odd")
    assert re.findall(r'data-order="([^"]+)"', searched.text) == ["odd id/with spaces &amp; ü"]
    assert '/orders/odd%20id%2Fwith%20spaces%20%26%20%C3%BC' in searched.text


async def test_an_order_in_detail(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/orders/stuck", headers=bearer(VIEWER))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["state"], body["stuck"], body["final"], body["sagaType"]) == (
        "AwaitingReview", True, False, SAGA_TYPE)
    assert "class AwaitingReview current" in body["graph"]
    assert body["timeline"]["path"] == ["Initial", "AwaitingReview"]
    why = "\n".join(body["waitingFor"])
    assert ("in AwaitingReview the saga acts on Completed (SupervisionCompleted), "
            "Started (SupervisionStarted)") in why
    assert "unchanged since" in why
    odd = await client.get("/api/orders/odd%20id%2Fwith%20spaces%20%26%20%C3%BC",
                           headers=bearer(VIEWER))
    assert odd.status_code == 200 and odd.json()["correlationId"] == "odd id/with spaces & ü"
    spec = (await client.get("/openapi.json")).json()
    assert "/api/orders/{order_id}" in spec["paths"]
    await sign_in(client, VIEWER)
    page = await client.get("/orders/stuck")
    assert 'id="saga-graph"' in page.text
    assert re.search(r'class="node current"[^>]*data-state="AwaitingReview"', page.text)
    assert re.search(r'class="node visited[^"]*"[^>]*data-state="Initial"', page.text)
    assert re.search(r'class="edge taken" data-source="Initial" data-target="AwaitingReview"',
                     page.text)
    assert 'data-refresh="10"' in page.text  # not final: it refreshes itself
    done = await client.get("/orders/done")
    assert 'data-refresh="0"' in done.text
    assert (await client.get("/orders/odd%20id%2Fwith%20spaces%20%26%20%C3%BC")
            ).status_code == 200


async def test_a_review_past_its_deadline_shows_as_expired(seeded: str) -> None:
    reviews = ReviewStore.open(seeded)
    await reviews.create_table()
    now = datetime.now(UTC)

    def task(order: str, entered: datetime) -> ReviewTask:
        return ReviewTask(handoff_id=f"h-{order}", correlation_id=order, saga_type=SAGA_TYPE,
                          reason="big", payload={"amount": "2500.00", "currency": "EUR",
                                                 "lines": [{"sku": "LAMP-1", "quantity": 1,
                                                            "unitPrice": "2500.00"}]},
                          escalated=False, execution_arn="arn:aws:states:us-east-1:123456789012:"
                          f"execution:m:{order}", task_token=f"tok-{order}",
                          entered_at=entered, timeout_seconds=600)

    late = await reviews.record(task("stuck", now - timedelta(hours=1)), now)
    live = await reviews.record(task("fresh", now), now)
    await reviews.close()
    app = create_app(settings_for(seeded), sagas=[ReviewedOrderSaga])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=ORIGIN) as client:
        pending = (await client.get("/api/reviews", headers=bearer(VIEWER))).json()
        assert [r["id"] for r in pending["reviews"]] == [live]
        expired = (await client.get("/api/reviews?status=expired",
                                    headers=bearer(VIEWER))).json()["reviews"]
        assert [r["id"] for r in expired] == [late]
        assert expired[0]["decisionReason"] == "the workflow stopped waiting at its deadline"
        await sign_in(client, APPROVER)
        page = await client.get(f"/reviews/{live}")
        assert "2500.00 EUR" in page.text and "LAMP-1" in page.text
        deadline = (now + timedelta(seconds=600)).strftime("%Y-%m-%d %H:%M")
        assert deadline in page.text
        closed = await client.get(f"/reviews/{late}")
        assert "This review is expired" in closed.text


@pytest.mark.emulator
@pytest.mark.timeout(180)
async def test_approve_and_reject_through_the_api_against_real_executions(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    rig = ReviewRig(emulator, sqlite_url(tmp_path))
    await rig.start()
    app = create_app(settings_for(rig.database_url, aws_endpoint_url=emulator.endpoint_url,
                                  aws_region=emulator.region), sagas=[ReviewedOrderSaga])
    said: list[str] = []
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=ORIGIN) as client:
            order, other = f"o-{uuid.uuid4().hex[:8]}", f"o-{uuid.uuid4().hex[:8]}"
            arn, review = await rig.drive_to_review(order)
            _, second = await rig.drive_to_review(other)
            assert review.deadline is not None  # the workflow said when it stops waiting

            pending = await client.get("/api/reviews", headers=bearer(VIEWER))
            said.append(pending.text)
            assert {r["id"] for r in pending.json()["reviews"]} == {review.id, second.id}
            detail = await client.get(f"/api/orders/{order}", headers=bearer(VIEWER))
            said.append(detail.text)
            body = detail.json()
            assert body["links"]["traceIds"] == [TRACE_ID]
            [execution] = body["links"]["executions"]
            assert execution["execution_arn"] == arn and execution["console_url"] is None
            assert execution["describe"]["status"] == "RUNNING"  # the emulator's answer
            assert execution["current_state"] == "AwaitReview"
            kinds = {e["kind"] for e in body["timeline"]["entries"]}
            assert {"transition", "handoff", "supervisor", "published"} <= kinds
            assert any(e["folded"] for e in body["timeline"]["entries"])
            assert any(line.startswith("waiting for a person: a review is pending")
                       for line in body["waitingFor"])
            said.append((await client.get(f"/orders/{order}")).text)

            approve = await client.post(f"/api/reviews/{review.id}/approve",
                                        json={"comment": "known customer"},
                                        headers=bearer(APPROVER))
            said.append(approve.text)
            assert approve.status_code == 200
            assert approve.json()["changed"] is True and approve.json()["result"] == "approved"
            again = await client.post(f"/api/reviews/{review.id}/approve",
                                      headers=bearer(APPROVER))
            said.append(again.text)
            assert again.status_code == 200 and again.json()["changed"] is False
            assert "already approved by ann" in again.json()["message"]

            # The pages: open the review, confirm, decide.
            csrf = await sign_in(client, APPROVER)
            page = await client.get(f"/reviews/{second.id}")
            said.append(page.text)
            assert "amount 2500 over the limit" in page.text
            asked = await client.post(f"/reviews/{second.id}/reject", headers=FORM,
                                      content=form({"csrf_token": csrf, "reason": "stolen card",
                                                    "comment": "the bank called"}))
            said.append(asked.text)
            assert asked.status_code == 200 and "Yes, reject" in asked.text
            assert await rig.pending_review(other) is not None  # nothing decided yet
            done = await client.post(f"/reviews/{second.id}/reject", headers=FORM,
                                     content=form({"csrf_token": csrf, "reason": "stolen card",
                                                   "comment": "the bank called",
                                                   "confirm": "yes"}))
            assert done.status_code == 303
            assert "review%20rejected%20by%20ann" in done.headers["location"]

            async def state(cid: str, wanted: str) -> bool:
                return await rig.state_of(cid) == wanted

            await await_for(lambda: state(order, "Approved"), what="Approved")
            await await_for(lambda: state(other, "Rejected"), what="Rejected")
            await emulator_done(emulator, arn)
            detail = await client.get(f"/api/orders/{order}", headers=bearer(VIEWER))
            said.append(detail.text)
            summaries = [e["summary"] for e in detail.json()["timeline"]["entries"]]
            assert any("reviewer answered approved (by ann)" in s for s in summaries)
            assert any("review approved by ann" in s for s in summaries)
            assert any("acknowledged the outcome" in s for s in summaries)
            rejected = await client.get(f"/api/orders/{other}", headers=bearer(VIEWER))
            said.append(rejected.text)
            assert any("review rejected by ann (stolen card): the bank called" in e["summary"]
                       for e in rejected.json()["timeline"]["entries"])
            said.append((await client.get(f"/orders/{order}")).text)
            said.append((await client.get("/reviews")).text)
            said.append((await client.get("/api/reviews?status=all",
                                          headers=bearer(VIEWER))).text)
            audit = (await client.get("/api/audit", headers=bearer(VIEWER))).json()
            said.append(str(audit))
            got = [(e["actor"], e["action"], e["outcome"], e["correlationId"], e["reason"])
                   for e in reversed(audit["entries"])]
            assert got == [("ann", "approve", "approved", order, None),
                           ("ann", "approve", "unchanged", order, None),
                           ("ann", "reject", "rejected", other, "stolen card")]
            page = (await client.get("/audit")).text
            assert "stolen card" in page and "the bank called" in page
        assert rig.reviews is not None
        async with rig.reviews.store.transaction(readonly=True) as tx:
            tokens = (await tx.scalars(select(review_tasks.c.task_token))).all()
        assert len(tokens) == 2
        for token in tokens:
            assert all(token not in text for text in said)
            assert token not in caplog.text  # not even in the SDK's DEBUG lines
    finally:
        await rig.stop()


async def emulator_done(emulator: Emulator, arn: str) -> None:
    import asyncio

    done = await asyncio.to_thread(emulator.wait_for_execution, arn)
    assert done["status"] == "SUCCEEDED"
