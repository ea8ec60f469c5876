"""``stepsaga demo``: the whole Order-to-Cash hybrid on one machine, walking every path.

It starts the local AWS emulator (moto in server mode), makes a fresh SQLite database
(``.stepsaga/order_to_cash.db``), provisions what ``infra/`` deploys for supervision
(EventBridge bus and rules, claim table, review queue, the ManualReview and SlowShipping
state machines), and runs in **one event loop**: one worker hosting the saga and the
order, payment, inventory and shipping services over SQS, with the bridge's EventBridge
and Step Functions sinks attached and ``bridge.ReviewTaskConsumer`` on the review queue;
and the ops console (uvicorn). Then it submits a mix of orders, one or more per path:

========================  ==================================================================
happy                     charged, reserved, shipped → Completed
payment declined          the gateway declines → Canceled, nothing to undo
inventory missing         charged, then out of stock → refund → Canceled
carrier down              the carrier never answers; the saga's shipping deadline fires →
                          cancel shipment, release stock, refund → Canceled
review approved           over the review threshold → ManualReview → approved → Completed
review rejected           a risk flag → ManualReview → rejected → Canceled
review timed out          a risk flag, nobody answers → escalated → timed out → Canceled
slow shipping recovered   the carrier refuses past the saga's retry budget → SlowShipping
                          retries → the carrier is back → Completed
slow shipping failed      as above, the carrier never comes back → SlowShipping gives up →
                          cancel shipment, release stock, refund → Canceled
========================  ==================================================================

The demo plays the people: the reviewer approves and rejects through
:class:`bridge.ReviewService` (what the console's buttons call), clicks twice to show that
a second click changes nothing, and clicks a timed-out review to show it has expired; the
carrier's operators bring the carrier back for one order. Every duration is short (the
workflows' timings are parameters), so the run takes well under a minute after start-up.
Orders after the first 20 (``--orders`` scales the happy path) go in at 4 a second, so
that one process and SQLite keep up and the supervised orders' short timeouts hold.

At the end it prints each order's outcome, why it was canceled, charges − refunds from
the payment ledger (and at the fake gateway) and its console link, the counts by outcome,
and whether the books balance. It returns a :class:`DemoResult`; the command exits
non-zero when an order is not terminal, ended on another path than planned, or the books
do not balance.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import secrets
import signal
import socket
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text
from sqlalchemy import select

from bridge import ReviewService, ReviewStore
from bridge.console import ConsoleSettings, create_app
from bridge.reviews import StepFunctions
from core_saga import AwsConfig, Worker, WorkerSettings
from core_saga.emulator import Emulator, patched_environ, start_emulator
from core_saga.logs import formatted
from core_saga.persistence import SqlStore
from core_saga.transports import SqsTransport
from supervisor_workflows import ManualReviewTimings, SlowShippingTimings

from .app import EmbeddedServer, build_app, order_service, provision_local
from .messages import StockLine
from .orders import CANCELED, COMPLETED, OrderRequest, orders
from .payment import FakePaymentGateway, payments
from .payment.repository import CHARGE, CHARGED, REFUND, REFUNDED
from .saga import OrderSaga
from .settings import OrderSagaSettings
from .shipping import CREATED, CarrierUnavailable, FakeCarrier, Label, shipments

log = logging.getLogger("examples.order_to_cash.demo")

TERMINAL = (COMPLETED, CANCELED)
DEFAULT_CONSOLE_PORT = 8080
"""The console's port when none is given and it is free (else any free port)."""
DATABASE_FILE = "order_to_cash.db"

# -- what the demo runs ---------------------------------------------------------------------

SAGA_SETTINGS = OrderSagaSettings(
    review_threshold=Decimal("1000.00"),
    shipping_retry_initial=timedelta(seconds=0.5),
    shipping_retry_max=timedelta(seconds=1),
    shipping_retry_budget=3,
    shipping_deadline=timedelta(seconds=10),
)
"""Three shipment attempts 0.5 s and 1 s apart, then SlowShipping; an order whose
shipping service never answers meets the 10 s deadline first (its command comes back 1,
2, 4 and 8 s apart)."""
REVIEW_TIMINGS = ManualReviewTimings(review_timeout_seconds=8, escalation_timeout_seconds=4,
                                     delivery_timeout_seconds=10, delivery_max_attempts=3)
"""A review waits 8 s for a person, the escalated one 4 s more."""
SHIPPING_TIMINGS = SlowShippingTimings(deadline_seconds=8, interval_seconds=1,
                                       backoff_rate=1.5, max_delay_seconds=2,
                                       attempt_timeout_seconds=10,
                                       delivery_timeout_seconds=10, delivery_max_attempts=3)
"""SlowShipping retries for about 8 s."""
REVIEWER = "demo-reviewer"
THINK_SECONDS = 1.0
"""How long the demo's reviewer looks at a review before deciding."""


@dataclass(frozen=True)
class DemoPath:
    """One path through the saga and the outcome it must end in."""

    key: str
    title: str
    outcome: str
    cancel_code: str | None = None


HAPPY = DemoPath("happy", "happy path", COMPLETED)
DECLINED = DemoPath("declined", "payment declined", CANCELED, "payment_declined")
NO_STOCK = DemoPath("no-stock", "inventory missing after payment → refund", CANCELED,
                    "inventory_unavailable")
CARRIER_DOWN = DemoPath("carrier-down", "carrier down past the shipping deadline → "
                        "void, release, refund", CANCELED, "shipping_deadline")
REVIEW_APPROVED = DemoPath("review-approved", "manual review approved", COMPLETED)
REVIEW_REJECTED = DemoPath("review-rejected", "manual review rejected", CANCELED,
                           "review_rejected")
REVIEW_TIMED_OUT = DemoPath("review-timed-out", "manual review timed out (escalated)",
                            CANCELED, "review_timed_out")
SLOW_RECOVERED = DemoPath("slow-shipping-recovered", "slow shipping recovered", COMPLETED)
SLOW_FAILED = DemoPath("slow-shipping-failed", "slow shipping failed → void, release, "
                       "refund", CANCELED, "shipping_abandoned")
PATHS = (HAPPY, DECLINED, NO_STOCK, CARRIER_DOWN, REVIEW_APPROVED, REVIEW_REJECTED,
         REVIEW_TIMED_OUT, SLOW_RECOVERED, SLOW_FAILED)

STOCK = {"BOOK-1": 1000, "MUG-1": 1000, "LAMP-1": 50, "POSTER-1": 0}
"""POSTER-1 is out of stock (the inventory-missing path)."""


@dataclass(frozen=True)
class DemoOrder:
    """An order the demo submits, and the path it must take."""

    order_id: str
    path: DemoPath
    request: OrderRequest


def _request(*lines: tuple[str, int, str], risk_flags: tuple[str, ...] = (),
             customer: str = "c-demo") -> OrderRequest:
    total = sum((Decimal(price) * quantity for _, quantity, price in lines), Decimal(0))
    return OrderRequest.model_validate({
        "customerId": customer, "currency": "EUR", "amount": str(total),
        "lines": [{"sku": s, "quantity": q, "unitPrice": p} for s, q, p in lines],
        "riskFlags": list(risk_flags)})


_HAPPY_CARTS: tuple[tuple[tuple[str, int, str], ...], ...] = (
    (("BOOK-1", 2, "12.50"),),
    (("MUG-1", 1, "9.90"), ("BOOK-1", 1, "12.50")),
    (("MUG-1", 3, "9.90"),),
    (("LAMP-1", 1, "89.00"),),
)


def demo_orders(happy: int = 10) -> list[DemoOrder]:
    """One order on every other path and `happy` on the happy path; the slowest paths
    first, so they start first."""
    plan = [
        DemoOrder("review-timed-out-1", REVIEW_TIMED_OUT,
                  _request(("BOOK-1", 1, "12.50"), risk_flags=("address_mismatch",))),
        DemoOrder("slow-shipping-failed-1", SLOW_FAILED, _request(("MUG-1", 2, "9.90"))),
        DemoOrder("slow-shipping-recovered-1", SLOW_RECOVERED,
                  _request(("BOOK-1", 3, "12.50"))),
        DemoOrder("carrier-down-1", CARRIER_DOWN, _request(("MUG-1", 1, "9.90"))),
        DemoOrder("review-approved-1", REVIEW_APPROVED, _request(("LAMP-1", 1, "1500.00"))),
        DemoOrder("review-rejected-1", REVIEW_REJECTED,
                  _request(("BOOK-1", 2, "12.50"), risk_flags=("new_account",))),
        DemoOrder("declined-1", DECLINED, _request(("BOOK-1", 4, "12.50"))),
        DemoOrder("no-stock-1", NO_STOCK, _request(("POSTER-1", 1, "19.00"))),
    ]
    plan += [DemoOrder(f"happy-{n:02d}", HAPPY, _request(*_HAPPY_CARTS[n % len(_HAPPY_CARTS)],
                                                          customer=f"c-{n:03d}"))
             for n in range(1, happy + 1)]
    return plan


class DemoCarrier(FakeCarrier):
    """The fake carrier, plus orders for which it never answers (:attr:`silent`: the
    label request times out, so the shipping service's transaction rolls back and the
    command comes back later, as for any transient failure) and a count of the refusals
    per order."""

    def __init__(self) -> None:
        super().__init__()
        self.silent: set[str] = set()
        self.refusals: Counter[str] = Counter()

    async def create_label(self, *, order_id: str, lines: Sequence[StockLine],
                           idempotency_key: str) -> Label:
        if order_id in self.silent:
            self.calls += 1
            raise TimeoutError(f"{self.name}: the label request for {order_id} timed out")
        try:
            return await super().create_label(order_id=order_id, lines=lines,
                                              idempotency_key=idempotency_key)
        except CarrierUnavailable:
            self.refusals[order_id] += 1
            raise


# -- options, results, errors -----------------------------------------------------------------

class DemoError(Exception):
    """The demo cannot start or run; the message says why and what to do."""


@dataclass(frozen=True)
class DemoOptions:
    """What ``stepsaga demo`` was asked for."""

    workdir: Path = Path(".stepsaga")
    happy: int = 10
    console_host: str = "127.0.0.1"
    console_port: int | None = None
    """None: 8080 when free, else any free port; 0: any free port."""
    console_token: str | None = None
    """The console's bearer token (approver); None: a random one, printed."""
    keep_running: bool = False
    timeout: float = 100.0
    """Seconds to wait for every order to end."""


@dataclass(frozen=True)
class OrderOutcome:
    """How one order ended, from the saga, the order service and the payment ledger."""

    order: DemoOrder
    state: str
    """The saga's state ("—" when it has no instance)."""
    status: str
    """The order service's status."""
    cancel_code: str | None
    reason: str | None
    charged: Decimal
    refunded: Decimal
    at_gateway: Decimal
    live_shipment: bool

    @property
    def net(self) -> Decimal:
        return self.charged - self.refunded

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL and self.status == self.state

    @property
    def balanced(self) -> bool:
        """Charges − refunds: the amount for a completed order, 0 for any other; the
        gateway agrees; only a completed order has a live shipment."""
        kept = self.order.request.amount if self.state == COMPLETED else Decimal(0)
        return (self.net == kept and self.at_gateway == self.net
                and self.live_shipment == (self.state == COMPLETED))

    @property
    def as_planned(self) -> bool:
        return (self.state == self.order.path.outcome
                and self.cancel_code == self.order.path.cancel_code)

    @property
    def ok(self) -> bool:
        return self.terminal and self.balanced and self.as_planned


@dataclass
class DemoResult:
    """What a run showed."""

    outcomes: list[OrderOutcome]
    console_url: str
    console_token: str
    database: Path
    seconds: float
    """From start to the report."""
    interrupted: bool = False
    """The demo stopped waiting (timeout, Ctrl-C) before every order had ended."""

    @property
    def ok(self) -> bool:
        return not self.interrupted and bool(self.outcomes) and all(
            o.ok for o in self.outcomes)

    def link(self, order_id: str) -> str:
        return f"{self.console_url}/orders/{order_id}"

    def counts(self) -> Counter[str]:
        """Orders by outcome: ``Completed``, ``Canceled (code)``, or the state."""
        return Counter(f"{o.state} ({o.cancel_code})" if o.state == CANCELED and o.cancel_code
                       else o.state for o in self.outcomes)


# -- the run -----------------------------------------------------------------------------------

async def run_demo(options: DemoOptions | None = None, *, console: Console | None = None,
                   handle_signals: bool = False,
                   on_report: Callable[[DemoResult], Awaitable[None]] | None = None
                   ) -> DemoResult:
    """Run the demo. `on_report` is awaited after the report, while the console still
    serves (a test looks at it there); `handle_signals` makes SIGINT/SIGTERM end the run
    (or, with ``keep_running``, the wait) cleanly."""
    options = options or DemoOptions()
    console = console or Console()
    if options.happy < 0:
        raise DemoError(f"--orders must be 0 or more, not {options.happy}")
    started = time.monotonic()
    listener, port = _console_socket(options.console_host, options.console_port)
    try:
        database = _fresh_database(options.workdir)
    except DemoError:
        listener.close()
        raise
    stop = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(listener.close)
        stack.enter_context(_demo_logging(options.workdir / "demo.log"))
        if handle_signals:
            stack.enter_context(_signals_set(stop))
        console.print(f"[bold]stepsaga demo[/bold] — Order-to-Cash on SQLite ({database}) "
                      "and the local AWS emulator")
        emulator = await _start_emulator(options.workdir / "emulator.log")
        stack.callback(emulator.stop)
        # Fake credentials and the endpoint of the emulator: nothing reaches AWS.
        stack.enter_context(patched_environ(emulator.env()))
        # A server given by STEPSAGA_AWS_ENDPOINT_URL may be shared: keep our names apart.
        prefix = "" if emulator.process is not None else f"demo{secrets.token_hex(3)}-"
        resources = await asyncio.to_thread(
            provision_local, emulator.boto3_client, prefix, manual_review=REVIEW_TIMINGS,
            slow_shipping=SHIPPING_TIMINGS)
        console.print(f"emulator at {emulator.endpoint_url}: queues, EventBridge bus "
                      f"{resources.bus_name!r} and rules, claim table, review queue, the "
                      f"ManualReview and SlowShipping state machines "
                      f"({time.monotonic() - started:.1f} s)")

        settings = WorkerSettings(
            database_url=f"sqlite+aiosqlite:///{database}", aws_region=emulator.region,
            aws_endpoint_url=emulator.endpoint_url, queue_prefix=prefix,
            wait_time_seconds=1, outbox_poll_seconds=0.1, delete_linger_seconds=0.02,
            send_linger_seconds=0.01, redelivery_base_seconds=1.0, max_deliveries=5,
            shutdown_grace_seconds=5)
        store = SqlStore.from_url(settings.database_url)
        stack.push_async_callback(store.close)
        transport = await SqsTransport.connect(settings.sqs())
        stack.push_async_callback(transport.close)
        gateway = FakePaymentGateway(seed=7)
        carrier = DemoCarrier()
        # The app as every entry point wires it (the review consumer, the bridge's sinks),
        # with the demo's short timings, its fakes and its stock.
        worker = await build_app(
            settings, store, transport, bus=resources.bus_name, saga_settings=SAGA_SETTINGS,
            gateway=gateway, carrier=carrier,
            stock={**STOCK, "BOOK-1": max(1000, 10 * options.happy),
                   "MUG-1": max(1000, 10 * options.happy)})
        reviews = ReviewStore.open(store)  # what the demo's reviewer reads
        running = asyncio.create_task(worker.run(install_signal_handlers=False))
        stack.push_async_callback(_stop_worker, worker, running)

        token = options.console_token or secrets.token_urlsafe(12)
        app = create_app(ConsoleSettings(
            database_url=settings.database_url, aws_region=emulator.region,
            aws_endpoint_url=emulator.endpoint_url, console_sagas=[],
            console_tokens={token: {"name": REVIEWER, "roles": ["approver"]}},
            console_title="stepsaga demo — ops console"), sagas=[OrderSaga])
        server = EmbeddedServer(app, log_level="warning", access_log=False, log_config=None,
                                lifespan="on")
        serving = asyncio.create_task(server.serve([listener]))
        stack.push_async_callback(_stop_console, server, serving)
        await _console_started(server, serving)
        url_host = "127.0.0.1" if options.console_host in ("0.0.0.0", "") else options.console_host
        console_url = f"http://{url_host}:{port}"
        console.print(f"ops console at [link={console_url}]{console_url}[/link] — sign in with "
                      f"the token [bold]{token}[/bold]")

        plan = demo_orders(options.happy)
        for order in plan:
            if order.path is DECLINED:
                gateway.decline(order.order_id)
            elif order.path is CARRIER_DOWN:
                carrier.silent.add(order.order_id)
            elif order.path in (SLOW_RECOVERED, SLOW_FAILED):
                carrier.refuse(order.order_id)
        # Orders go in while the demo watches and plays the reviewer.
        submitting = asyncio.create_task(_submit(worker, plan))
        stack.push_async_callback(_cancel, submitting)
        console.print(f"submitting {len(plan)} orders: {options.happy} on the happy path and "
                      f"one on each of the {len(PATHS) - 1} other paths")

        director = Director(
            reviews=reviews,
            service=ReviewService(reviews, StepFunctions(AwsConfig(
                region=emulator.region, endpoint_url=emulator.endpoint_url))),
            carrier=carrier, plan=plan, budget=SAGA_SETTINGS.shipping_retry_budget or 0)
        watcher = Watcher(store, plan)
        interrupted = not await _watch(console, watcher, director, submitting, started,
                                       options.timeout, stop)
        outcomes = await _outcomes(store, gateway, plan)
        result = DemoResult(outcomes, console_url, token, database,
                            time.monotonic() - started, interrupted=interrupted)
        _report(console, result, director)
        if on_report is not None:
            await on_report(result)
        if options.keep_running and not stop.is_set():
            console.print(f"\nthe console stays up at {console_url} (token {token}); the "
                          "worker keeps running. Press Ctrl-C to stop.")
            console.print(f"[dim]timelines in the terminal: STEPSAGA_AWS_ENDPOINT_URL="
                          f"{emulator.endpoint_url} stepsaga orders show ORDER_ID "
                          f"--database-url sqlite+aiosqlite:///{database}[/dim]")
            await stop.wait()
        console.print("stopping…")
    return result


async def _submit(worker: Worker, plan: list[DemoOrder], *, burst: int = 20,
                  per_second: float = 4.0, at_once: int = 8) -> None:
    """Place every order through the order service (its row and ``OrderSubmitted`` in one
    transaction), under the demo's readable ids: the first `burst` at once, the rest
    paced at `per_second`, so that a large ``--orders`` does not bury the supervised
    orders' short timeouts under a backlog on one process and SQLite."""
    slots = asyncio.Semaphore(at_once)

    async def place(order: DemoOrder) -> None:
        async with slots:
            service = order_service(worker)
            service.new_order_id = _fixed(order.order_id)
            await service.submit(order.request)

    placing = []
    for number, order in enumerate(plan):
        if number >= burst:
            await asyncio.sleep(1 / per_second)
        placing.append(asyncio.create_task(place(order)))
    await asyncio.gather(*placing)


def _fixed(order_id: str) -> Callable[[], str]:
    return lambda: order_id


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(BaseException):
        await task


async def _stop_worker(worker: Worker, running: asyncio.Task[None]) -> None:
    worker.request_stop()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(running, 15)


# -- watching and playing the people -----------------------------------------------------------

@dataclass
class Snapshot:
    """Where every order is: the saga's state and the order service's status."""

    states: dict[str, str]
    statuses: dict[str, str]

    def done(self, order_id: str) -> bool:
        state = self.states.get(order_id)
        return state in TERMINAL and self.statuses.get(order_id) == state


class Watcher:
    """Reads where the orders are."""

    def __init__(self, store: SqlStore, plan: list[DemoOrder]) -> None:
        self.store = store
        self.plan = plan

    async def snapshot(self) -> Snapshot:
        states = {i.correlation_id: i.state
                  async for i in self.store.stream_instances(OrderSaga.model.name)}
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(select(orders.c.order_id, orders.c.status))).all()
        return Snapshot(states, {row.order_id: row.status for row in rows})


@dataclass
class Director:
    """Plays the people and the outside world: the reviewer (through
    :class:`ReviewService`, what the console's Approve and Reject buttons call) and the
    carrier's operators."""

    reviews: ReviewStore
    service: ReviewService
    carrier: DemoCarrier
    plan: list[DemoOrder]
    budget: int
    started: float = field(default_factory=time.monotonic)
    events: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=200))
    _seen: dict[str, float] = field(default_factory=dict)
    _done: set[str] = field(default_factory=set)

    def note(self, text: str) -> None:
        self.events.append((time.monotonic() - self.started, text))
        log.info("demo: %s", text)

    def _of(self, path: DemoPath) -> list[str]:
        return [o.order_id for o in self.plan if o.path is path]

    async def step(self, snapshot: Snapshot) -> None:
        now = time.monotonic()
        approve, reject = set(self._of(REVIEW_APPROVED)), set(self._of(REVIEW_REJECTED))
        timed_out = set(self._of(REVIEW_TIMED_OUT))
        for review in await self.reviews.list_reviews(status="pending", limit=1000):
            order_id = review.correlation_id
            if review.id not in self._seen:
                self._seen[review.id] = now
                if order_id in timed_out:
                    which = "escalated review" if review.escalated else "review"
                    self.note(f"{order_id}: {which} waiting; nobody will answer it")
            if review.id in self._done:
                continue
            looked = now - self._seen[review.id] >= THINK_SECONDS
            if order_id in approve and looked:
                result = await self.service.approve(review.id, reviewer=REVIEWER,
                                                    comment="known customer, amount checked")
                self._done.add(review.id)
                self.note(f"{order_id}: approved in review ({result.message})")
                again = await self.service.approve(review.id, reviewer=REVIEWER)
                self.note(f"{order_id}: approved again → changed={again.changed}: "
                          f"{again.message}")
            elif order_id in reject and looked:
                result = await self.service.reject(review.id, reviewer=REVIEWER,
                                                   reason="card reported stolen")
                self._done.add(review.id)
                self.note(f"{order_id}: rejected in review ({result.message})")
            elif order_id in timed_out and snapshot.states.get(order_id) == CANCELED:
                # The workflow timed the review out; a late click decides nothing.
                late = await self.service.approve(review.id, reviewer=REVIEWER)
                self._done.add(review.id)
                self.note(f"{order_id}: a late approve after the timeout → {late.result}: "
                          f"{late.message}")
        for order_id in self._of(SLOW_RECOVERED):
            # Back once SlowShipping has been refused at least once itself.
            if order_id not in self._done and self.carrier.refusals[order_id] > self.budget:
                self._done.add(order_id)
                self.carrier.accept(order_id)
                self.note(f"{order_id}: the carrier serves it again after "
                          f"{self.carrier.refusals[order_id]} refusals")


async def _watch(console: Console, watcher: Watcher, director: Director,
                 submitting: asyncio.Task[None], started: float, timeout: float,
                 stop: asyncio.Event) -> bool:
    """Show progress until every order is in and has ended (True), or the timeout or a
    signal (False)."""
    begun = time.monotonic()
    finish = asyncio.Event()
    directing = asyncio.create_task(_direct(director, watcher, finish))
    try:
        with Live(console=console, refresh_per_second=4) as live:
            while True:
                if submitting.done():
                    submitting.result()  # a failed submission ends the demo, with its error
                snapshot = await watcher.snapshot()
                live.update(_progress(watcher.plan, snapshot, director,
                                      time.monotonic() - started))
                if submitting.done() and all(snapshot.done(o.order_id) for o in watcher.plan):
                    # One last round for the people: the late click on a timed-out review
                    # happens only once its order has ended. The people's own task ends
                    # its round first: two rounds at once would both click that review,
                    # and the second would find it claimed by the first ("unchanged").
                    finish.set()
                    await directing
                    await _step(director, watcher)
                    break
                if stop.is_set() or time.monotonic() - begun > timeout:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.25)
    finally:
        await _cancel(directing)
    console.print()  # a file or dumb terminal gets the last table without a final newline
    if stop.is_set():
        console.print("[yellow]interrupted: reporting where the orders are[/yellow]")
        return False
    if not all(snapshot.done(o.order_id) for o in watcher.plan):
        console.print(f"[red]gave up waiting after {timeout:.0f} s[/red]")
        return False
    return True


async def _direct(director: Director, watcher: Watcher, finish: asyncio.Event) -> None:
    """The people, on their own task (a slow progress table does not slow them down),
    round after round until `finish` is set."""
    while not finish.is_set():
        await _step(director, watcher)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finish.wait(), 0.2)


async def _step(director: Director, watcher: Watcher) -> None:
    try:
        await director.step(await watcher.snapshot())
    except Exception as exc:  # tried again on the next round
        director.note(f"the reviewer's call failed: {type(exc).__name__}: {exc}")


def _progress(plan: list[DemoOrder], snapshot: Snapshot, director: Director,
              elapsed: float) -> RenderableType:
    done = sum(snapshot.done(o.order_id) for o in plan)
    table = Table(title=f"Order-to-Cash — {done}/{len(plan)} orders ended — {elapsed:4.1f} s",
                  title_justify="left")
    table.add_column("path")
    table.add_column("orders", justify="right")
    table.add_column("where they are (saga state)")
    table.add_column("ended", justify="right")
    for path in PATHS:
        ids = [o.order_id for o in plan if o.path is path]
        if not ids:
            continue
        where = Counter(snapshot.states.get(i, "Submitted") for i in ids)
        ended = sum(snapshot.done(i) for i in ids)
        table.add_row(path.title, str(len(ids)),
                      ", ".join(f"{state} {n}" for state, n in sorted(where.items())),
                      Text(f"{ended}/{len(ids)}", style="green" if ended == len(ids) else ""))
    recent = list(director.events)[-6:]
    lines = Text("\n".join(f"{at:5.1f} s  {text}" for at, text in recent) or
                 "waiting for the first review…", style="dim")
    return Group(table, lines)


# -- the report --------------------------------------------------------------------------------

async def _outcomes(store: SqlStore, gateway: FakePaymentGateway, plan: list[DemoOrder]
                    ) -> list[OrderOutcome]:
    """Every order's ending, read from the saga, the order service's table, the payment
    ledger (``payments``), the shipments table and the gateway."""
    wanted = [o.order_id for o in plan]
    async with store.engine.connect() as conn:
        order_rows = {row.order_id: row for row in (await conn.execute(
            select(orders.c.order_id, orders.c.status, orders.c.cancel_code, orders.c.reason)
            .where(orders.c.order_id.in_(wanted)))).all()}
        ledger = (await conn.execute(
            select(payments.c.order_id, payments.c.kind, payments.c.status, payments.c.amount)
            .where(payments.c.order_id.in_(wanted)))).all()
        live = {row.order_id for row in (await conn.execute(
            select(shipments.c.order_id).where(shipments.c.order_id.in_(wanted),
                                               shipments.c.status == CREATED))).all()}
    charged = dict.fromkeys(wanted, Decimal(0))
    refunded = dict.fromkeys(wanted, Decimal(0))
    for entry in ledger:
        if entry.kind == CHARGE and entry.status == CHARGED:
            charged[entry.order_id] += entry.amount
        elif entry.kind == REFUND and entry.status == REFUNDED:
            refunded[entry.order_id] += entry.amount
    instances = {i.correlation_id: i
                 async for i in store.stream_instances(OrderSaga.model.name)}
    outcomes = []
    for order in plan:
        row = order_rows.get(order.order_id)
        instance = instances.get(order.order_id)
        outcomes.append(OrderOutcome(
            order=order, state=instance.state if instance else "—",
            status=row.status if row else "—",
            cancel_code=row.cancel_code if row else None, reason=row.reason if row else None,
            charged=charged[order.order_id], refunded=refunded[order.order_id],
            at_gateway=gateway.net(order.order_id), live_shipment=order.order_id in live))
    return outcomes


TABLE_WIDTH = 150
"""Terminals this wide get the outcomes as one table; narrower ones a list, each order
on two or three lines (links unbroken)."""


def _outcome_cells(o: OrderOutcome) -> tuple[Text, str, Text]:
    """The outcome (colored), charged − refunded, and the check of one order."""
    problems = [p for p, bad in (("NOT ENDED", not o.terminal), ("BOOKS", not o.balanced),
                                 ("OFF PATH", not o.as_planned)) if bad]
    outcome = o.state if o.status == o.state else f"{o.state} (order: {o.status})"
    return (Text(outcome, style="green" if o.state == COMPLETED else
                 "yellow" if o.state == CANCELED else "red"),
            f"{o.charged:.2f} − {o.refunded:.2f} = {o.net:.2f}",
            Text("ok", style="green") if o.ok else Text(", ".join(problems), style="bold red"))


def _report(console: Console, result: DemoResult, director: Director) -> None:
    if console.width >= TABLE_WIDTH:
        table = Table(title="Outcomes", title_justify="left")
        for column in ("order", "outcome", "why canceled", "charged − refunded", "check",
                       "console"):
            table.add_column(column, no_wrap=column != "why canceled",
                             justify="right" if column.startswith("charged") else "left")
        for o in result.outcomes:
            outcome, money, check = _outcome_cells(o)
            table.add_row(o.order.order_id, outcome, o.reason or "", money, check,
                          result.link(o.order.order_id))
        console.print(table)
    else:
        console.print("[bold]Outcomes[/bold] (order, outcome, charged − refunded, check; "
                      "why canceled; console link)")
        for o in result.outcomes:
            outcome, money, check = _outcome_cells(o)
            console.print(Text.assemble(f"{o.order.order_id:<26} ", outcome,
                                        " " * max(1, 10 - len(outcome)), f"{money:>24}  ",
                                        check))
            if o.reason:
                console.print(f"    {o.reason}", style="dim", highlight=False)
            console.print(f"    {result.link(o.order.order_id)}", highlight=False,
                          soft_wrap=True)
    if director.events:
        console.print("[bold]what the demo's people did[/bold]")
        for at, text in director.events:
            console.print(f"  {at:5.1f} s  {text}", highlight=False)
    counts = result.counts()
    console.print("[bold]by outcome[/bold]")
    for name, n in sorted(counts.items()):
        console.print(f"  {name:<36} {n:>4}", highlight=False)
    terminal = sum(o.terminal for o in result.outcomes)
    balanced = [o for o in result.outcomes if o.balanced]
    charged = sum((o.charged for o in result.outcomes), Decimal(0))
    refunded = sum((o.refunded for o in result.outcomes), Decimal(0))
    console.print(f"terminal: {terminal}/{len(result.outcomes)} orders; books: "
                  f"{len(balanced)}/{len(result.outcomes)} orders balance (charged "
                  f"{charged:.2f} EUR, refunded {refunded:.2f}, kept {charged - refunded:.2f})",
                  highlight=False)
    for o in result.outcomes:
        if not o.as_planned and o.terminal:
            planned = o.order.path.outcome + (f" ({o.order.path.cancel_code})"
                                              if o.order.path.cancel_code else "")
            console.print(f"[red]{o.order.order_id} ended {o.state} ({o.cancel_code}), not "
                          f"{planned} as its path ({o.order.path.title}) plans[/red]",
                          highlight=False)
    if result.ok:
        console.print(f"[bold green]every order is terminal and the books balance[/bold green]"
                      f" ({result.seconds:.1f} s)")
    else:
        console.print(f"[bold red]the demo FAILED: some orders are not terminal, not on their "
                      f"path, or their books do not balance[/bold red] ({result.seconds:.1f} s;"
                      " logs in the work directory)")
    console.print(f"console: {result.console_url} (token {result.console_token})",
                  highlight=False)


# -- plumbing ----------------------------------------------------------------------------------

def _fresh_database(workdir: Path) -> Path:
    """The demo's SQLite file in `workdir`, removed first (with its WAL files)."""
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        database = workdir / DATABASE_FILE
        for leftover in (database, *(workdir / f"{DATABASE_FILE}{s}" for s in ("-wal", "-shm")),
                         workdir / "demo.log", workdir / "emulator.log"):
            leftover.unlink(missing_ok=True)
    except OSError as exc:
        raise DemoError(f"cannot use the work directory {workdir}: {exc.strerror or exc} "
                        "(choose another with --workdir)") from None
    return database.resolve()


def _console_socket(host: str, port: int | None) -> tuple[socket.socket, int]:
    """A listening socket for the console, bound now so that a port in use is reported
    before anything starts."""
    candidates = [DEFAULT_CONSOLE_PORT, 0] if port is None else [port]
    for candidate in candidates:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            if candidate != candidates[-1]:
                continue
            if exc.errno == errno.EADDRINUSE:
                raise DemoError(f"port {candidate} on {host} is in use: choose another with "
                                "--console-port, or --console-port 0 for any free one") from None
            raise DemoError(f"cannot listen on {host}:{candidate} for the console: "
                            f"{exc.strerror or exc}") from None
        sock.setblocking(False)
        return sock, int(sock.getsockname()[1])
    raise AssertionError("unreachable")


async def _start_emulator(log_file: Path) -> Emulator:
    try:
        return await asyncio.to_thread(start_emulator, log_file=log_file)
    except Exception as exc:
        raise DemoError(f"the local AWS emulator did not start: {exc} (see {log_file}; is "
                        "moto installed? pip install -e '.[local]')") from None


async def _console_started(server: EmbeddedServer, serving: asyncio.Task[None],
                           timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if serving.done():
            serving.result()
            raise DemoError("the console stopped at start (see demo.log)")
        if time.monotonic() > deadline:
            raise DemoError(f"the console did not start in {timeout:.0f} s")
        await asyncio.sleep(0.02)


async def _stop_console(server: EmbeddedServer, serving: asyncio.Task[None]) -> None:
    server.stop()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(serving, 10)


@contextlib.contextmanager
def _demo_logging(path: Path) -> Iterator[None]:
    """Log to `path` (INFO) instead of the terminal, where the progress table is; JSON
    lines with ``STEPSAGA_LOG_FORMAT=json``."""
    handler = formatted(logging.FileHandler(path, encoding="utf-8"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    quiet = {name: logging.getLogger(name).level
             for name in ("botocore", "aiobotocore", "urllib3", "httpx", "uvicorn.error")}
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for name, old in quiet.items():
            logging.getLogger(name).setLevel(old)
        handler.close()


@contextlib.contextmanager
def _signals_set(stop: asyncio.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop` while the demo runs."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
