"""Operator actions on one order, end to end on the emulator: resume fires a stuck
order's timer and re-sends its unsent outbox row, both audited; a viewer may not act;
an unknown or finished order is refused and nothing changes; and the one-line status
says what the order waits for, or why it ended."""

from __future__ import annotations

import asyncio
import functools
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
from bridge.contracts import SupervisionStarted, handoff_id
from core_saga import (
    Envelope,
    Event,
    Message,
    Saga,
    SagaState,
    Schedule,
    State,
    Worker,
    WorkerSettings,
    operator_cancel_event,
)
from core_saga.emulator import Emulator
from core_saga.persistence import SagaStore, store_from_url
from core_saga.transports import SqsTransport
from tests.console.support import (
    FORM,
    ORIGIN,
    ROLE,
    SAGA_TYPE,
    ReviewRig,
    await_for,
    bearer,
    form,
    sign_in,
    sqlite_url,
)

runner = CliRunner()
VIEWER = "viewer-token-123"
OPERATOR = "operator-token-789"
TOKENS = {VIEWER: "vera:viewer", OPERATOR: "olga:operator"}


class OpenParcel(Message):
    message_namespace = "t.actions"
    parcel_id: str


class Nudge(Message):
    message_namespace = "t.actions"
    parcel_id: str


class Notice(Message):
    message_namespace = "t.actions"
    parcel_id: str


class CloseParcel(Message):
    message_namespace = "t.actions"
    parcel_id: str
    reason: str


class ParcelState(SagaState):
    nudge_token: str | None = None
    cancel_code: str | None = None


def _by_parcel(message: Any) -> str:
    return str(message.parcel_id)


def _closed(ctx: Any) -> None:
    ctx.saga.cancel_code = ctx.message.reason


def _operator_canceled(ctx: Any) -> None:
    ctx.saga.cancel_code = "operator_canceled"


class ParcelSaga(Saga[ParcelState]):
    """Opened, it tells the notices queue and waits an hour for its nudge timer."""

    saga_name = "Parcel"
    waiting = State()
    nudged = State()
    canceled = State(terminal=True)
    opened = Event(OpenParcel, correlate_by=_by_parcel)
    closed = Event(CloseParcel, correlate_by=_by_parcel)
    nudge = Schedule(Nudge, token_field="nudge_token", delay=timedelta(hours=1))
    operator_cancel = operator_cancel_event()

    def define(self) -> None:
        self.initially(self.when(self.opened)
                       .schedule(self.nudge, lambda ctx: Nudge(parcel_id=ctx.message.parcel_id))
                       .send("notices", lambda ctx: Notice(parcel_id=ctx.message.parcel_id))
                       .transition_to(self.waiting))
        self.during(self.waiting, self.when(self.nudge.received).transition_to(self.nudged))
        self.during(self.waiting, self.nudged,
                    self.when(self.operator_cancel).then(_operator_canceled)
                    .unschedule(self.nudge).transition_to(self.canceled))
        self.during(self.canceled, self.ignore(self.operator_cancel))
        self.during_any(self.when(self.closed).then(_closed).unschedule(self.nudge)
                        .transition_to(self.canceled))


class OpenCrate(Message):
    message_namespace = "t.actions"
    crate_id: str


class ShutCrate(Message):
    message_namespace = "t.actions"
    crate_id: str


class CrateSaga(Saga[SagaState]):
    """A saga that does not handle an operator's cancel."""

    saga_name = "Crate"
    open = State()
    shut = State(terminal=True)
    opened = Event(OpenCrate, correlate_by=lambda m: m.crate_id)
    closing = Event(ShutCrate, correlate_by=lambda m: m.crate_id)

    def define(self) -> None:
        self.initially(self.when(self.opened).transition_to(self.open))
        self.during(self.open, self.when(self.closing).transition_to(self.shut))


@dataclass
class Rig:
    emulator: Emulator
    url: str
    prefix: str
    store: SagaStore
    sqs: Any

    def send(self, message: Message, parcel: str) -> None:
        body = Envelope(message, correlation_id=parcel).encode().decode()
        self.sqs.send_message(QueueUrl=self.queue_url("parcels"), MessageBody=body)

    def queue_url(self, name: str) -> str:
        return str(self.sqs.get_queue_url(QueueName=self.prefix + name)["QueueUrl"])

    async def state(self, parcel: str) -> str | None:
        record = await self.store.get_instance("Parcel", parcel)
        return None if record is None else record.state

    async def unsent(self, parcel: str, kind: str) -> Any:
        rows = [r for r in await self.store.outbox_for(parcel)
                if f":{kind}:" in r.message_type and r.dispatched_at is None]
        return rows[0] if rows else None

    def cli(self, *args: str) -> Any:
        import typer

        from bridge.cli import register

        app = typer.Typer()

        @app.command()
        def graph() -> None:  # a core command, so that typer keeps subcommand names
            """(stand-in)"""

        register(app)
        return runner.invoke(app, list(args), env={
            "COLUMNS": "200", "STEPSAGA_DATABASE_URL": self.url, "STEPSAGA_OPERATOR": "otto",
            "STEPSAGA_AWS_ENDPOINT_URL": self.emulator.endpoint_url,
            "STEPSAGA_QUEUE_PREFIX": self.prefix})


@pytest.fixture
async def rig(emulator: Emulator, tmp_path: Path) -> AsyncIterator[Rig]:
    prefix = f"ac{uuid.uuid4().hex[:8]}-"
    emulator.create_queue(prefix + "parcels")  # no notices queue yet: sending there fails
    url = sqlite_url(tmp_path)
    settings = WorkerSettings(database_url=url, aws_endpoint_url=emulator.endpoint_url,
                              queue_prefix=prefix, wait_time_seconds=1,
                              outbox_poll_seconds=0.2)
    store = store_from_url(url)
    await store.create_schema()
    await AuditLog.open(store).create_table()
    transport = await SqsTransport.connect(settings.sqs())
    worker = Worker(settings, store=store, transport=transport)
    worker.add_saga(ParcelSaga(), queue="parcels")
    worker.add_saga(CrateSaga(), queue="parcels")
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    try:
        yield Rig(emulator, url, prefix, store, emulator.boto3_client("sqs"))
    finally:
        worker.request_stop()
        await task
        await transport.close()
        await store.close()


def console_for(rig: Rig, endpoint: str | None = None) -> httpx.AsyncClient:
    settings = ConsoleSettings(database_url=rig.url, console_tokens=TOKENS,
                               queue_prefix=rig.prefix,
                               aws_endpoint_url=endpoint or rig.emulator.endpoint_url,
                               console_sagas=[f"{__name__}:ParcelSaga",
                                              f"{__name__}:CrateSaga"],
                               console_saga_queues={"Parcel": "parcels"})
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings)),
                             base_url=ORIGIN)


async def _audit(rig: Rig, parcel: str) -> list[tuple[str, str, str, str | None]]:
    entries, _ = await AuditLog.open(rig.store).entries(correlation_id=parcel)
    return [(e.actor, e.action, e.outcome, e.reason) for e in reversed(entries)]


async def test_resume_fires_a_timer_and_resends_an_unsent_row_audited(rig: Rig) -> None:
    rig.send(OpenParcel(parcel_id="p-1"), "p-1")
    await await_for(lambda: rig.unsent("p-1", "Nudge"), what="the timer written")
    # The notices queue is missing: the row is retried with a growing backoff.
    await await_for(lambda: _retried(rig, "p-1"), what="a failed send")

    async with console_for(rig) as client:
        detail = (await client.get("/api/orders/p-1", headers=bearer(VIEWER))).json()
        assert detail["status"].startswith("sending Notice retried"), detail["status"]
        assert detail["status"].endswith("— resume")
        page = await client.get("/orders/p-1", headers=bearer(VIEWER))
        assert 'id="status"' in page.text and "sending Notice retried" in page.text
        assert 'id="resume-form"' not in page.text  # a viewer sees no action

        refused = await client.post("/api/orders/p-1/resume", headers=bearer(VIEWER),
                                    json={"reason": "try"})
        assert refused.status_code == 403
        no_reason = await client.post("/api/orders/p-1/resume", headers=bearer(OPERATOR),
                                      json={"reason": " "})
        assert no_reason.status_code == 422

        # The queue is back: resumed from the command line, the row is sent at once.
        rig.emulator.create_queue(rig.prefix + "notices")
        row = await rig.unsent("p-1", "Notice")
        shown = await asyncio.to_thread(rig.cli, "orders", "resume", "p-1", "--reason",
                                        "notices queue restored")
        assert shown.exit_code == 0, shown.output
        assert "1 message(s) due now" in shown.output
        assert "1 timer(s) left to fire when due" in shown.output
        await await_for(lambda: _dispatched(rig, "p-1", row.id), what="the row re-sent")
        assert await rig.state("p-1") == "Waiting"  # the timer was left alone

        detail = (await client.get("/api/orders/p-1", headers=bearer(VIEWER))).json()
        assert detail["status"].startswith("waiting for timer Nudge, fires at"), \
            detail["status"]
        assert "resume fires it now" in detail["status"]

        # The operator fires the timer from the order page: the order moves on.
        csrf = await sign_in(client, OPERATOR, next_page="/orders/p-1")
        page = await client.get("/orders/p-1")
        assert 'id="resume-form"' in page.text
        posted = await client.post("/orders/p-1/resume", headers=FORM, content=form(
            {"csrf_token": csrf, "reason": "the customer called", "fireTimers": "yes"}))
        assert posted.status_code == 303, posted.text
        assert "1 timer(s) fired" in httpx.URL(posted.headers["location"]).params["msg"]
        await await_for(lambda: _in(rig, "p-1", "Nudged"), what="the timer fired")

        again = await client.post("/api/orders/p-1/resume", headers=bearer(OPERATOR),
                                  json={"reason": "once more"})
        assert again.status_code == 200 and again.json()["changed"] is False, again.text
        assert "nothing changed" in again.json()["message"]

    assert await _audit(rig, "p-1") == [
        ("otto", "resume", "resumed", "notices queue restored"),
        ("olga", "resume", "resumed", "the customer called"),
        ("olga", "resume", "unchanged", "once more")]


async def test_unknown_and_finished_orders_are_refused_and_the_status_says_why(
        rig: Rig) -> None:
    rig.emulator.create_queue(rig.prefix + "notices")
    rig.send(OpenParcel(parcel_id="p-2"), "p-2")
    await await_for(lambda: _in(rig, "p-2", "Waiting"), what="the parcel opened")
    rig.send(CloseParcel(parcel_id="p-2", reason="operator_canceled"), "p-2")
    await await_for(lambda: _in(rig, "p-2", "Canceled"), what="the parcel closed")

    async with console_for(rig) as client:
        detail = (await client.get("/api/orders/p-2", headers=bearer(VIEWER))).json()
        assert detail["status"] == "ended Canceled: operator_canceled"
        finished = await client.post("/api/orders/p-2/resume", headers=bearer(OPERATOR),
                                     json={"reason": "why not"})
        assert finished.status_code == 409 and "has ended" in finished.json()["message"]
        unknown = await client.post("/api/orders/nope/resume", headers=bearer(OPERATOR),
                                    json={"reason": "why not"})
        assert unknown.status_code == 404 and "no order 'nope'" in unknown.json()["message"]
    assert await _audit(rig, "p-2") == [] and await _audit(rig, "nope") == []
    out = await asyncio.to_thread(rig.cli, "orders", "resume", "nope", "--reason", "x")
    assert out.exit_code == 1 and "no order 'nope'" in out.output
    out = await asyncio.to_thread(rig.cli, "orders", "resume", "p-2", "--reason", "x",
                                  "--saga", f"{__name__}:ParcelSaga")
    assert out.exit_code == 1 and "has ended" in out.output
    shown = await asyncio.to_thread(rig.cli, "orders", "show", "p-2", "--no-aws", "--saga",
                                    f"{__name__}:ParcelSaga")
    assert shown.exit_code == 0
    assert shown.output.splitlines()[1] == "status: ended Canceled: operator_canceled"


async def _retried(rig: Rig, parcel: str) -> bool:
    row = await rig.unsent(parcel, "Notice")
    return row is not None and row.attempts >= 2


async def _dispatched(rig: Rig, parcel: str, row_id: int) -> bool:
    return any(r.id == row_id and r.dispatched_at is not None
               for r in await rig.store.outbox_for(parcel))


async def _in(rig: Rig, parcel: str, state: str) -> bool:
    return await rig.state(parcel) == state


async def test_cancel_goes_through_the_saga_and_is_refused_where_it_cannot(rig: Rig) -> None:
    rig.emulator.create_queue(rig.prefix + "notices")
    for parcel in ("p-3", "p-4"):
        rig.send(OpenParcel(parcel_id=parcel), parcel)
    body = Envelope(OpenCrate(crate_id="c-1"), correlation_id="c-1").encode().decode()
    rig.sqs.send_message(QueueUrl=rig.queue_url("parcels"), MessageBody=body)
    for parcel in ("p-3", "p-4"):
        await await_for(functools.partial(_in, rig, parcel, "Waiting"),
                        what="the parcels opened")
    await await_for(lambda: rig.store.get_instance("Crate", "c-1"), what="the crate")

    async with console_for(rig) as client:
        refused = await client.post("/api/orders/p-3/cancel", headers=bearer(VIEWER),
                                    json={"reason": "no"})
        assert refused.status_code == 403
        done = await client.post("/api/orders/p-3/cancel", headers=bearer(OPERATOR),
                                 json={"reason": "customer called"})
        assert done.status_code == 200 and done.json()["outcome"] == "requested", done.text
        await await_for(lambda: _in(rig, "p-3", "Canceled"), what="the cancel applied")
        detail = (await client.get("/api/orders/p-3", headers=bearer(VIEWER))).json()
        assert detail["status"] == "ended Canceled: operator_canceled"
        assert await rig.unsent("p-3", "Nudge") is None  # its timer stopped
        again = await client.post("/api/orders/p-3/cancel", headers=bearer(OPERATOR),
                                  json={"reason": "again"})
        assert again.status_code == 409 and again.json()["changed"] is False

        crate = await client.post("/api/orders/c-1/cancel", headers=bearer(OPERATOR),
                                  json={"reason": "no crate"})
        assert crate.status_code == 409, crate.text
        assert "does not handle an operator cancel" in crate.json()["message"]
        assert (await rig.store.get_instance("Crate", "c-1")).state == "Open"  # type: ignore[union-attr]

    # SQS unreachable: the answer says so, and the order is as it was.
    async with console_for(rig, endpoint="http://127.0.0.1:9") as client:
        down = await client.post("/api/orders/p-4/cancel", headers=bearer(OPERATOR),
                                 json={"reason": "try"})
        assert down.status_code == 503 and "nothing changed" in down.json()["message"]
    assert await rig.state("p-4") == "Waiting"

    out = await asyncio.to_thread(rig.cli, "orders", "cancel", "p-4", "--reason", "by hand",
                                  "--saga", f"{__name__}:ParcelSaga", "--queue", "parcels")
    assert out.exit_code == 0, out.output
    await await_for(lambda: _in(rig, "p-4", "Canceled"), what="the CLI's cancel applied")
    assert await _audit(rig, "p-3") == [("olga", "cancel", "requested", "customer called")]
    assert await _audit(rig, "c-1") == [("olga", "cancel", "unsupported", "no crate")]
    assert await _audit(rig, "p-4") == [("olga", "cancel", "failed", "try"),
                                        ("otto", "cancel", "requested", "by hand")]


async def test_abort_stops_the_execution_and_the_status_points_to_reviews(
        emulator: Emulator, tmp_path: Path) -> None:
    review_rig = ReviewRig(emulator, sqlite_url(tmp_path))
    await review_rig.start()
    sfn = emulator.boto3_client("stepfunctions")
    try:
        await AuditLog.open(review_rig.database_url).create_table()
        await review_rig.drive_to_review("r-1")
        # r-2's supervisor is a long wait (a workflow between tasks).
        hold = sfn.create_state_machine(
            name=f"{review_rig.prefix}Hold", roleArn=ROLE, type="STANDARD",
            definition=json.dumps({"StartAt": "Hold", "States": {
                "Hold": {"Type": "Wait", "Seconds": 3600, "End": True}}}))["stateMachineArn"]
        review_rig.place("r-2")
        await await_for(lambda: review_rig.state_of("r-2"), what="r-2's instance")
        arn = sfn.start_execution(stateMachineArn=hold, input="{}")["executionArn"]
        started = SupervisionStarted(
            handoff_id=handoff_id(SAGA_TYPE, "r-2", "ManualReview"), saga_type=SAGA_TYPE,
            correlation_id="r-2", workflow="ManualReview", reason="held", payload={},
            reply_to=review_rig.saga_queue, execution_arn=arn, started_at=datetime.now(UTC))
        review_rig.sqs.send_message(QueueUrl=review_rig.saga_queue, MessageBody=Envelope(
            started, correlation_id="r-2").encode().decode())
        await await_for(lambda: _knows(review_rig, "r-2", arn), what="the execution known")

        # Step Functions unreachable: the answer says so, the execution runs on.
        down = ConsoleSettings(database_url=review_rig.database_url, console_tokens=TOKENS,
                               aws_endpoint_url="http://127.0.0.1:9")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(
                app=create_app(down)), base_url=ORIGIN) as client:
            failed = await client.post("/api/orders/r-2/abort", headers=bearer(OPERATOR),
                                       json={"reason": "offline"})
            assert failed.status_code == 503, failed.text
            assert "did not answer" in failed.json()["message"]
        assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"

        settings = ConsoleSettings(database_url=review_rig.database_url,
                                   console_tokens=TOKENS,
                                   aws_endpoint_url=emulator.endpoint_url)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(
                app=create_app(settings)), base_url=ORIGIN) as client:
            detail = (await client.get("/api/orders/r-1", headers=bearer(VIEWER))).json()
            assert detail["status"].startswith("waiting for review since "), detail
            assert detail["status"].endswith("— approve/reject in Reviews")
            detail = (await client.get("/api/orders/r-2", headers=bearer(VIEWER))).json()
            assert detail["status"].startswith("waiting for ManualReview since "), detail
            refused = await client.post("/api/orders/r-2/abort", headers=bearer(VIEWER),
                                        json={"reason": "no"})
            assert refused.status_code == 403
            done = await client.post("/api/orders/r-2/abort", headers=bearer(OPERATOR),
                                     json={"reason": "wrong workflow"})
            assert done.status_code == 200 and done.json()["detail"]["stopped"] == [arn]
            described = await await_for(lambda: _ended(sfn, arn), what="the execution stopped")
            assert described["status"] == "ABORTED", described
            again = await client.post("/api/orders/r-2/abort", headers=bearer(OPERATOR),
                                      json={"reason": "again"})
            assert again.status_code == 200 and again.json()["changed"] is False
            unknown = await client.post("/api/orders/nope/abort", headers=bearer(OPERATOR),
                                        json={"reason": "x"})
            assert unknown.status_code == 404
        assert review_rig.store is not None
        entries, _ = await AuditLog.open(review_rig.store).entries(correlation_id="r-2")
        assert [(e.actor, e.action, e.outcome, e.reason) for e in reversed(entries)] == [
            ("olga", "abort", "failed", "offline"),
            ("olga", "abort", "aborted", "wrong workflow"),
            ("olga", "abort", "unchanged", "again")]
    finally:
        await review_rig.stop()


async def _knows(rig: ReviewRig, order_id: str, arn: str) -> bool:
    assert rig.store is not None
    record = await rig.store.get_instance(SAGA_TYPE, order_id)
    return bool(record and record.data["handoffs"][0].get("execution_arn") == arn)


async def _ended(sfn: Any, arn: str) -> dict[str, Any] | None:
    described = await asyncio.to_thread(sfn.describe_execution, executionArn=arn)
    return None if described["status"] == "RUNNING" else dict(described)
