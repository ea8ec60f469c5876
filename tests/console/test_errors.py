"""The error store for operators, end to end on the emulator: a poison message shows on
the error API and ``stepsaga errors list``, a redrive before the fix fails again and
lands back with its new reason, the redrive after the fix is processed once, moving the
dead-letter queue back brings duplicates the inbox absorbs, and every action is audited
and in the order's timeline. Then the bad input and the faults, and who may do what."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from bridge.audit import AuditLog
from bridge.console import ConsoleSettings, create_app
from bridge.errorstore import ErrorFilters, ErrorRedriver, TransportSender, list_errors
from core_saga import Envelope, Event, Message, Saga, SagaState, State, Worker, WorkerSettings
from core_saga.emulator import Emulator
from core_saga.persistence import ErrorRecord, SagaStore, SqlStore, store_from_url
from core_saga.transports import InMemoryTransport, SqsTransport
from tests.console.support import (
    FORM,
    ORIGIN,
    await_for,
    bearer,
    form,
    sign_in,
    sqlite_url,
)

runner = CliRunner()
VIEWER = "viewer-token-123"
OPERATOR = "operator-token-789"
APPROVER = "approver-token-456"
TOKENS = {VIEWER: "vera:viewer", OPERATOR: "olga:operator", APPROVER: "ann:approver"}


class OpenTill(Message):
    message_namespace = "t.errors"
    till_id: str


class AddToTill(Message):
    message_namespace = "t.errors"
    till_id: str
    amount: int


class TillState(SagaState):
    seen: list[int] = []


RULES = {"accept_negative": False, "version": "v1"}
"""What the handler accepts: the fix an operator deploys before redriving."""


def _add(ctx: Any) -> None:
    if ctx.message.amount < 0 and not RULES["accept_negative"]:
        raise ValueError(f"negative amount {ctx.message.amount} refused (rules "
                         f"{RULES['version']})")
    ctx.saga.seen = [*ctx.saga.seen, ctx.message.amount]


class TillSaga(Saga[TillState]):
    saga_name = "Till"
    counting = State(terminal=True)
    opened = Event(OpenTill, correlate_by=lambda m: m.till_id)
    added = Event(AddToTill, correlate_by=lambda m: m.till_id)

    def define(self) -> None:
        self.initially(self.when(self.opened).transition_to(self.counting))
        self.during(self.counting, self.when(self.added).then(_add))


@dataclass
class Rig:
    emulator: Emulator
    url: str
    prefix: str
    store: SagaStore
    sqs: Any

    def send(self, message: Message | str, till: str | None = None) -> str:
        """Put a message (or a raw body) on the till queue; its message id."""
        if isinstance(message, str):
            body, message_id = message, ""
        else:
            envelope = Envelope(message, correlation_id=till)
            body, message_id = envelope.encode().decode(), envelope.message_id
        self.sqs.send_message(QueueUrl=self.queue_url("till"), MessageBody=body)
        return message_id

    def queue_url(self, name: str) -> str:
        return str(self.sqs.get_queue_url(QueueName=self.prefix + name)["QueueUrl"])

    def depth(self, name: str) -> int:
        got = self.sqs.get_queue_attributes(QueueUrl=self.queue_url(name), AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
        return sum(int(v) for v in got["Attributes"].values())

    async def seen(self, till: str) -> list[int] | None:
        record = await self.store.get_instance("Till", till)
        return None if record is None else list(record.data["seen"])

    def cli(self, *args: str) -> Any:
        import typer

        from bridge.cli import register

        app = typer.Typer()

        @app.command()
        def graph() -> None:  # a core command, so that typer keeps subcommand names
            """(stand-in)"""

        register(app)
        return runner.invoke(app, list(args), env={
            "COLUMNS": "200", "STEPSAGA_DATABASE_URL": self.url,
            "STEPSAGA_AWS_ENDPOINT_URL": self.emulator.endpoint_url,
            "STEPSAGA_QUEUE_PREFIX": self.prefix, "STEPSAGA_OPERATOR": "otto"})


@pytest.fixture
async def rig(emulator: Emulator, tmp_path: Path) -> AsyncIterator[Rig]:
    prefix = f"er{uuid.uuid4().hex[:8]}-"
    emulator.create_queue(prefix + "till", dlq=True)
    url = sqlite_url(tmp_path)
    settings = WorkerSettings(database_url=url, aws_endpoint_url=emulator.endpoint_url,
                              queue_prefix=prefix, wait_time_seconds=1,
                              delete_linger_seconds=0, send_linger_seconds=0,
                              outbox_poll_seconds=0.2, redelivery_base_seconds=0,
                              # One delivery: a poison message goes to the error store
                              # at once (the path under test, not the retries).
                              max_deliveries=1)
    store = store_from_url(url)
    await store.create_schema()
    transport = await SqsTransport.connect(settings.sqs())
    worker = Worker(settings, store=store, transport=transport)
    worker.add_saga(TillSaga(), queue="till")
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    RULES.update(accept_negative=False, version="v1")
    try:
        yield Rig(emulator, url, prefix, store, emulator.boto3_client("sqs"))
    finally:
        worker.request_stop()
        await task
        await transport.close()
        await store.close()


def console_for(rig: Rig, **extra: Any) -> httpx.AsyncClient:
    fields = {"aws_endpoint_url": rig.emulator.endpoint_url, **extra}
    settings = ConsoleSettings(database_url=rig.url, console_tokens=TOKENS,
                               queue_prefix=rig.prefix, **fields)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings)),
                             base_url=ORIGIN)


async def test_a_poison_message_is_fixed_redriven_and_processed_once(rig: Rig) -> None:
    rig.send(OpenTill(till_id="till-1"), "till-1")
    await await_for(lambda: rig.store.get_instance("Till", "till-1"), what="the till opened")
    rig.send(AddToTill(till_id="till-1", amount=-5), "till-1")
    rig.send("this is not a message")

    async with console_for(rig) as client:
        async def errors(query: str) -> dict[str, Any]:
            answer = await client.get(f"/api/errors?{query}", headers=bearer(VIEWER))
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

        async def listed(query: str, count: int) -> list[dict[str, Any]] | None:
            found = await errors(query)
            return found["errors"] if found["total"] == count else None

        [poison] = await await_for(lambda: listed("orderId=till-1", 1), what="the error")
        assert "rules v1" in poison["reason"] and poison["status"] == "open"
        [malformed] = await await_for(lambda: listed("noOrder=true", 1),
                                      what="the malformed message's error")
        assert malformed["correlationId"] is None
        assert (await errors("messageType=addtotill&endpoint=till"))["total"] == 1
        assert (await errors("olderThan=3600"))["total"] == 0

        listing = await asyncio.to_thread(rig.cli, "errors", "list", "--order", "till-1")
        assert listing.exit_code == 0, listing.output
        assert "AddToTill" in listing.output and "rules v1" in listing.output
        shown = await asyncio.to_thread(rig.cli, "errors", "show", str(poison["id"]))
        assert shown.exit_code == 0 and '"amount":-5' in shown.output.replace(" ", "")

        # A viewer may look but not act.
        refused = await client.post(f"/api/errors/{poison['id']}/redrive",
                                     headers=bearer(VIEWER), json={})
        assert refused.status_code == 403

        # Redriven before the fix: it fails again, back in the store with its new reason.
        RULES["version"] = "v2"
        first = await client.post(f"/api/errors/{poison['id']}/redrive",
                                  headers=bearer(OPERATOR), json={"reason": "try again"})
        assert first.status_code == 200 and first.json()["changed"] is True, first.text
        again = await await_for(lambda: listed("orderId=till-1&status=open", 1),
                                what="the second failure")
        assert again[0]["id"] != poison["id"] and "rules v2" in again[0]["reason"]
        before = (await client.get("/api/order-state/till-1", headers=bearer(VIEWER))
                  ).json()["fingerprint"]
        twice = await client.post(f"/api/errors/{poison['id']}/redrive",
                                  headers=bearer(OPERATOR), json={})
        assert twice.status_code == 200 and twice.json()["changed"] is False
        assert "redriven already" in twice.json()["message"]
        # Even an action that changed nothing is on the timeline: the open page reloads.
        assert (await client.get("/api/order-state/till-1", headers=bearer(VIEWER))
                ).json()["fingerprint"] != before

        # The fix, then the redrive (from the command line): processed once.
        RULES["accept_negative"] = True
        fixed = await asyncio.to_thread(rig.cli, "errors", "redrive", str(again[0]["id"]),
                                        "--reason", "rules fixed")
        assert fixed.exit_code == 0, fixed.output
        await await_for(lambda: _equal(rig.seen("till-1"), [-5]), what="the redrive")

        # The dead-letter queue holds both failed deliveries and the malformed message:
        # moved back, the duplicates are absorbed by the inbox.
        moved = await asyncio.to_thread(rig.cli, "dlq", "redrive", rig.prefix + "till-dlq",
                                        "--reason", "drain")
        assert moved.exit_code == 0, moved.output
        assert "3 messages moved" in moved.output
        await await_for(lambda: _drained(rig), what="the moved messages handled")
        assert await rig.seen("till-1") == [-5]
        assert (await errors("orderId=till-1"))["total"] == 2  # no new failure
        assert (await errors("noOrder=true"))["total"] == 2  # the malformed one, again

        # Every action is audited, and the order's timeline shows them.
        timeline = (await client.get("/api/orders/till-1", headers=bearer(VIEWER))).json()
        operator = [e for e in timeline["timeline"]["entries"] if e["kind"] == "operator"]
        assert [(e["details"]["actor"], e["details"]["action"], e["details"]["outcome"])
                for e in operator] == [("olga", "redrive", "redriven"),
                                       ("olga", "redrive", "unchanged"),
                                       ("otto", "redrive", "redriven"),
                                       ("otto", "dlq-redrive", "moved")]
        assert operator[0]["details"]["reason"] == "try again"
        page = await client.get("/orders/till-1", headers=bearer(VIEWER))
        assert "olga: redrive" in page.text
        assert f'href="/errors/{poison["id"]}"' in page.text  # the error, one click away
    shown = await asyncio.to_thread(rig.cli, "orders", "show", "till-1", "--no-aws")
    assert shown.exit_code == 0 and "otto: redrive" in shown.output, shown.output


async def _equal(got: Any, wanted: Any) -> bool:
    return bool(await got == wanted)


async def _drained(rig: Rig) -> bool:
    return await asyncio.to_thread(rig.depth, "till") == 0


UNREACHABLE = "http://127.0.0.1:9"
"""Nothing listens there: AWS unreachable."""


@pytest.fixture
async def seeded(emulator: Emulator, tmp_path: Path) -> AsyncIterator[Rig]:
    """Errors without a worker: one of an order, one without, an outbox delivery."""
    prefix = f"eb{uuid.uuid4().hex[:8]}-"
    emulator.create_queue(prefix + "till", dlq=False)
    url = sqlite_url(tmp_path)
    store = SqlStore.from_url(url)
    await store.create_schema()
    now = datetime.now(UTC)
    body = Envelope(AddToTill(till_id="o-9", amount=-1), correlation_id="o-9")
    later = Envelope(AddToTill(till_id="o-10", amount=-2), correlation_id="o-10")
    for record in (
            ErrorRecord("till", "ValueError", "refused", body.encode().decode(),
                        now - timedelta(hours=2), body.message_id, body.message_type, "o-9"),
            ErrorRecord("till", "MalformedMessageError", "not JSON", "garbage", now),
            ErrorRecord("outbox:send:billing", "DeliveryFailed", "no such queue", "{}", now,
                        "m-3", "urn:message:t:Bill:v1", "o-9"),
            ErrorRecord("till", "ValueError", "late", later.encode().decode(),
                        now - timedelta(minutes=10), later.message_id, later.message_type,
                        "o-10")):
        await store.add_error(record)
    yield Rig(emulator, url, prefix, store, emulator.boto3_client("sqs"))
    await store.close()


async def test_bad_input_faults_and_who_may_redrive(seeded: Rig) -> None:
    rig = seeded

    async def audited() -> list[tuple[str, str, str]]:
        entries, _ = await AuditLog.open(rig.store).entries()
        return [(e.actor, e.target, e.outcome) for e in reversed(entries)]

    async with console_for(rig, aws_endpoint_url=UNREACHABLE) as offline:
        down = await offline.post("/api/errors/1/redrive", headers=bearer(OPERATOR), json={})
        assert down.status_code == 503 and "nothing changed" in down.json()["message"]
        assert (await offline.get("/api/errors/1", headers=bearer(VIEWER))
                ).json()["status"] == "open"
        assert await asyncio.to_thread(rig.depth, "till") == 0
        dlq = await offline.post("/api/dlq/redrive", headers=bearer(OPERATOR),
                                 json={"queue": "any-dlq"})
        assert dlq.status_code == 503 and "did not answer" in dlq.json()["detail"]
    assert await audited() == [("olga", "error:1", "failed")]

    async with console_for(rig) as client:
        unknown = await client.post("/api/errors/999/redrive", headers=bearer(OPERATOR),
                                    json={})
        assert unknown.status_code == 404 and unknown.json()["message"] == "no error 999"
        outbox = await client.post("/api/errors/3/redrive", headers=bearer(OPERATOR), json={})
        assert outbox.status_code == 409 and "outbox delivery" in outbox.json()["message"]
        for token in (VIEWER, APPROVER):
            assert (await client.post("/api/errors/1/redrive", headers=bearer(token),
                                      json={})).status_code == 403
        unfiltered = await client.post("/api/errors/redrive", headers=bearer(OPERATOR),
                                       json={})
        assert unfiltered.status_code == 400
        no_queue = await client.post("/api/dlq/redrive", headers=bearer(OPERATOR),
                                     json={"queue": rig.prefix + "nope"})
        assert no_queue.status_code == 400 and "no queue" in no_queue.json()["detail"]
        assert await asyncio.to_thread(rig.depth, "till") == 0

        done = await client.post("/api/errors/redrive", headers=bearer(OPERATOR),
                                 json={"endpoint": "till", "olderThan": 3600})
        assert done.status_code == 200 and done.json()["redriven"] == 1, done.text
        again = await client.post("/api/errors/1/redrive", headers=bearer(OPERATOR), json={})
        assert again.status_code == 200 and again.json()["changed"] is False
        assert await asyncio.to_thread(rig.depth, "till") == 1

        # The pages: a session needs the operator role and its CSRF token, and confirms.
        viewer_csrf = await sign_in(client, VIEWER, next_page="/errors")
        as_viewer = await client.post("/errors/2/redrive", headers=FORM,
                                      content=form({"csrf_token": viewer_csrf}))
        assert as_viewer.status_code == 403
        await client.post("/logout", headers=FORM, content=form({"csrf_token": viewer_csrf}))
        csrf = await sign_in(client, OPERATOR, next_page="/errors")
        listing = (await client.get("/errors?noOrder=true")).text
        assert "not JSON" in listing and "refused" not in listing
        assert (await client.post("/errors/2/redrive", headers=FORM,
                                  content=form({"confirm": "yes"}))).status_code == 403
        asked = await client.post("/errors/2/redrive", headers=FORM,
                                  content=form({"csrf_token": csrf, "reason": "retry"}))
        assert asked.status_code == 200 and 'id="confirm"' in asked.text
        assert await asyncio.to_thread(rig.depth, "till") == 1
        sent = await client.post("/errors/2/redrive", headers=FORM, content=form(
            {"csrf_token": csrf, "reason": "retry", "confirm": "yes"}))
        assert sent.status_code == 303 and "sent%20back" in sent.headers["location"]
        page = (await client.get("/errors/2")).text
        assert 'id="redriven"' in page and "garbage" in page
        assert await asyncio.to_thread(rig.depth, "till") == 2
    assert await audited() == [("olga", "error:1", "failed"), ("olga", "error:1", "redriven"),
                               ("olga", "error:1", "unchanged"),
                               ("olga", "error:2", "redriven")]

    unknown_cli = await asyncio.to_thread(rig.cli, "errors", "redrive", "999")
    assert unknown_cli.exit_code == 1 and "no error 999" in unknown_cli.output
    twice_cli = await asyncio.to_thread(rig.cli, "errors", "redrive", "1")
    assert twice_cli.exit_code == 0 and "redriven already" in twice_cli.output
    no_dlq = await asyncio.to_thread(rig.cli, "dlq", "redrive", rig.prefix + "nope")
    assert no_dlq.exit_code == 1 and "nothing moved" in no_dlq.output
    assert await asyncio.to_thread(rig.depth, "till") == 2

    old = await asyncio.to_thread(rig.cli, "errors", "list", "--older-than", "1h", "--json")
    assert [e["id"] for e in json.loads(old.output)["errors"]] == [1]
    unfiltered_cli = await asyncio.to_thread(rig.cli, "errors", "redrive", "--all")
    assert unfiltered_cli.exit_code == 2 and "at least one filter" in unfiltered_cli.output
    every = await asyncio.to_thread(rig.cli, "errors", "redrive", "--all", "--endpoint",
                                    "till", "--older-than", "5m", "--reason", "batch")
    assert every.exit_code == 0 and "1 of 1 matching errors redriven" in every.output
    assert await asyncio.to_thread(rig.depth, "till") == 3
    assert (await audited())[-1] == ("otto", "error:4", "redriven")


async def test_filters_and_a_concurrent_second_redrive_on_every_sql_store(
        sql_store: SagaStore) -> None:
    """The filters run in the database, and of two redrives of one error at the same time
    exactly one sends (SQLite, PostgreSQL through SQLAlchemy and raw asyncpg)."""
    audit = AuditLog.open(sql_store)
    await audit.create_table()
    now = datetime.now(UTC)
    for record in (
            ErrorRecord("till", "ValueError", "a", "{}", now - timedelta(hours=3), "m-1",
                        "urn:message:t:AddToTill:v1", "o-1"),
            ErrorRecord("till", "MalformedMessageError", "b", "x%_", now),
            ErrorRecord("other", "ValueError", "c", "{}", now, "m-3",
                        "urn:message:t:OpenTill:v1", "o-1")):
        await sql_store.add_error(record)

    async def ids(**filters: Any) -> list[int]:
        items, total = await list_errors(sql_store, ErrorFilters(**filters), now=now)
        assert total == len(items)
        return [i.id for i in items]

    assert await ids() == [3, 2, 1]
    assert await ids(endpoint="till") == [2, 1]
    assert await ids(message_type="ADDTOTILL") == [1]
    assert await ids(message_type="%") == []  # a pattern character is a character
    assert await ids(older_than=timedelta(hours=1)) == [1]
    assert await ids(newer_than=timedelta(hours=1)) == [3, 2]
    assert await ids(correlation_id="o-1") == [3, 1]
    assert await ids(without_order=True) == [2]

    transport = InMemoryTransport()
    redriver = ErrorRedriver(sql_store, audit, TransportSender(transport))
    results = await asyncio.gather(*(redriver.redrive(1, actor=name)
                                     for name in ("ann", "bob")))
    assert sorted(r.outcome for r in results) == ["redriven", "unchanged"]
    assert transport.depth("till") == 1
    assert await ids(status="redriven") == [1]
    assert await ids(status="open") == [3, 2]
    batch = await redriver.redrive_matching(ErrorFilters(endpoint="till"), actor="ann")
    assert (batch.matched, batch.count("redriven")) == (1, 1)
    assert transport.depth("till") == 2
