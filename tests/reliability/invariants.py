"""The business invariants of a reliability run, checked at the end against the
services' own tables, the outside systems' tables (gateway, carrier) and the engine's
tables. Each check returns violations as ``(order id or None, text)``."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bridge import HandoffRecord, handoffs_of
from core_saga.persistence import ErrorRecord, SagaStore
from examples.order_to_cash.inventory import RESERVED, reservation_of, stock_levels
from examples.order_to_cash.orders import OrderRepository
from examples.order_to_cash.payment import PaymentRepository, balance
from examples.order_to_cash.queues import ALL_QUEUES
from examples.order_to_cash.shipping import CREATED, ShippingRepository

from .fakes import carrier_labels, gateway_calls
from .plan import (
    ABORTED_CAUSE,
    DELAYED_ENDINGS,
    EXPECTED,
    REVIEW_REJECT,
    RULE_OFF_CAUSE,
    SILENT_PATHS,
    SUPERVISION_LOST,
    PlannedOrder,
    path_of,
)
from .worker import WorkerConfig

TERMINAL = ("Completed", "Canceled")
AWAITING = ("AwaitingReview", "AwaitingShippingSupervision")

Violation = tuple[str | None, str]


@dataclass(frozen=True)
class Ending:
    """Where an order ended, read from the order service and the saga."""

    order_id: str
    status: str | None
    saga_state: str | None
    cancel_code: str | None

    @property
    def label(self) -> str:
        if self.status == "Canceled":
            return f"Canceled:{self.cancel_code}"
        return str(self.status)


async def endings(store: SagaStore, orders: Sequence[PlannedOrder]) -> dict[str, Ending]:
    found = {}
    for order in orders:
        async with store.transaction() as tx:
            record = await OrderRepository(tx).get(order.order_id)
        saga = await store.get_instance("OrderSaga", order.order_id)
        found[order.order_id] = Ending(
            order.order_id, record.status if record else None,
            saga.state if saga else None, record.cancel_code if record else None)
    return found


async def check_terminal(store: SagaStore, orders: Sequence[PlannedOrder],
                         ended: dict[str, Ending]) -> list[Violation]:
    """Every order is Completed or Canceled, the same in the order service and the saga;
    a saga that is not is stuck unless a timer or a message is still pending for it."""
    pending = Counter(row.correlation_id for row in await store.pending_outbox())
    found: list[Violation] = []
    for order in orders:
        end = ended[order.order_id]
        if end.status in TERMINAL and end.saga_state == end.status:
            continue
        found.append((order.order_id, f"not terminal: order {end.status}, saga "
                                      f"{end.saga_state}"))
        if end.saga_state not in TERMINAL and not pending[order.order_id] and \
                end.saga_state not in AWAITING:
            found.append((order.order_id, f"stuck in {end.saga_state} with no pending timer "
                                          "or message"))
    return found


async def check_money(store: SagaStore, fakes: AsyncEngine, orders: Sequence[PlannedOrder],
                      ended: dict[str, Ending]) -> list[Violation]:
    """Charges − refunds = the amount of a completed order, 0 for a canceled one — in the
    payment service's ledger and at the gateway."""
    async with fakes.connect() as conn:
        rows = (await conn.execute(select(gateway_calls))).all()
    at_gateway: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        if row.kind == "charge" and row.approved:
            at_gateway[row.order_id] += Decimal(row.amount)
        elif row.kind == "refund":
            at_gateway[row.order_id] -= Decimal(row.amount)
    found: list[Violation] = []
    for order in orders:
        async with store.transaction() as tx:
            kept = balance(await PaymentRepository(tx).entries(order.order_id))
        status = ended[order.order_id].status
        wanted = order.amount if status == "Completed" else Decimal(0)
        if kept != wanted:
            found.append((order.order_id, f"ledger keeps {kept}, wanted {wanted} ({status})"))
        if at_gateway[order.order_id] != wanted:
            found.append((order.order_id, f"the gateway holds {at_gateway[order.order_id]}, "
                                          f"wanted {wanted} ({status})"))
    return found


async def check_stock(store: SagaStore, initial: dict[str, int],
                      orders: Sequence[PlannedOrder], ended: dict[str, Ending]
                      ) -> list[Violation]:
    """Initial stock = available + shipped; only a completed order holds stock."""
    shipped: Counter[str] = Counter()
    found: list[Violation] = []
    for order in orders:
        reservation = await reservation_of(store, order.order_id)
        held = reservation is not None and reservation.status == RESERVED
        if ended[order.order_id].status == "Completed":
            if not held or reservation is None:
                found.append((order.order_id, "completed without a reservation"))
                continue
            for line in reservation.lines:
                shipped[line.sku] += line.quantity
        elif held:
            found.append((order.order_id, f"{ended[order.order_id].status} but still holds "
                                          "stock"))
    available = await stock_levels(store, initial)
    for sku, start in initial.items():
        if (available[sku] or 0) + shipped[sku] != start:
            found.append((None, f"stock of {sku} not conserved: {start} at start, "
                                f"{available[sku]} available + {shipped[sku]} shipped"))
    return found


async def check_shipments(store: SagaStore, fakes: AsyncEngine,
                          orders: Sequence[PlannedOrder], ended: dict[str, Ending]
                          ) -> list[Violation]:
    """At most one shipment per order — one live label at the carrier — and only a
    completed order has one."""
    async with fakes.connect() as conn:
        labels = (await conn.execute(select(carrier_labels))).all()
    live: Counter[str] = Counter(row.order_id for row in labels if not row.voided)
    found: list[Violation] = []
    for order in orders:
        async with store.transaction() as tx:
            shipment = await ShippingRepository(tx).get(order.order_id)
        status = ended[order.order_id].status
        shipped = shipment is not None and shipment.status == CREATED
        if live[order.order_id] > 1:
            found.append((order.order_id, f"{live[order.order_id]} live labels at the carrier"))
        if status == "Completed" and not shipped:
            found.append((order.order_id, "completed without a shipment"))
        if status != "Completed" and (shipped or live[order.order_id]):
            found.append((order.order_id, f"{status} but shipped (shipment {shipment}, "
                                          f"{live[order.order_id]} live label(s))"))
    return found


async def check_handoffs(store: SagaStore, orders: Sequence[PlannedOrder],
                         decisions: dict[str, int]) -> list[Violation]:
    """Each hand-off took effect at most once in the saga, and each review was decided
    at most once by the people (`decisions`: review id → decisions that changed it)."""
    found: list[Violation] = []
    for order in orders:
        applied = Counter(
            record.from_state for record in await store.history("OrderSaga", order.order_id)
            if record.message_type.endswith("SupervisionCompleted:v1")
            and record.from_state in AWAITING and record.to_state != record.from_state)
        for state, times in applied.items():
            if times > 1:
                found.append((order.order_id, f"a supervision outcome took effect {times} "
                                              f"times in {state}"))
    for review, changed in decisions.items():
        if changed > 1:
            found.append((None, f"review {review} was decided {changed} times"))
    return found


async def check_outbox(store: SagaStore) -> list[Violation]:
    """Nothing is left undispatched."""
    return [(row.correlation_id, f"outbox row {row.id} ({row.message_type} to "
                                 f"{row.destination}) never dispatched")
            for row in await store.pending_outbox()]


async def missing_errors(store: SagaStore, injected: dict[str, str]) -> set[str]:
    """The markers of the injected malformed messages not (yet) in the error store."""
    seen = {marker for record in await store.list_errors(limit=100_000)
            for marker in _markers(record.body)}
    return set(injected) - seen


async def settled(store: SagaStore, orders: Sequence[PlannedOrder],
                  malformed: dict[str, str]) -> bool:
    """Whether the workers have finished: every order terminal in the order service,
    the outbox empty, and every malformed message injected (`malformed`: marker → what
    it was) in the error store. The orders' end says nothing about the last malformed
    messages: one may have been put on a queue a moment before, or have come back from
    a killed worker only after its visibility timeout."""
    ended = await endings(store, orders)
    return (all(e.status in TERMINAL for e in ended.values())
            and not await store.pending_outbox()
            and not await missing_errors(store, malformed))


async def check_error_store(store: SagaStore, injected: dict[str, str]) -> list[Violation]:
    """Every malformed message injected (`injected`: marker → what it was) is in the
    error store with a reason, and nothing else is there."""
    errors = await store.list_errors(limit=100_000)
    seen: set[str] = set()
    found: list[Violation] = []
    for record in errors:
        marker = next((m for m in _markers(record.body) if m in injected), None)
        if marker is None and _carrier_never_answered(record):
            continue
        if marker is None:
            found.append((record.correlation_id, f"a valid message is in the error store: "
                                                 f"{record.endpoint}: {record.reason} "
                                                 f"({record.body[:200]!r})"))
            continue
        if not record.reason:
            found.append((None, f"{marker} is in the error store without a reason"))
        seen.add(marker)
    for marker, what in injected.items():
        if marker not in seen:
            found.append((None, f"injected {what} ({marker}) is not in the error store"))
    return found


def _carrier_never_answered(record: ErrorRecord) -> bool:
    """A ``CreateShipment`` of a silent-carrier order, dead-lettered by the worker after
    its deliveries because every label call timed out: the handler's own failure,
    dead-lettered as designed (with the shipped 5 deliveries, about 15 s of retries:
    a delayed order's shipping deadline may come later). The saga's deadline still
    cancels and compensates the order."""
    return (path_of(record.correlation_id or "") in SILENT_PATHS
            and (record.message_type or "").endswith(":CreateShipment:v1")
            and "timed out" in record.reason)


def _markers(body: str) -> Iterable[str]:
    start = body.find("chaos-bad-")
    while start >= 0:
        end = start + len("chaos-bad-")
        while end < len(body) and body[end].isdigit():
            end += 1
        yield body[start:end]
        start = body.find("chaos-bad-", end)


# -- stock at every point --------------------------------------------------------------------

_STOCK_AND_HELD = text(
    "SELECT s.sku, s.available, (SELECT COALESCE(SUM(l.quantity), 0) FROM reservation_lines l "
    "JOIN reservations r ON r.order_id = l.order_id WHERE r.status = :reserved "
    "AND l.sku = s.sku) FROM stock s")
"""One statement, so one snapshot on either database: what is available and what the
live reservations hold, per article."""


class StockSampler:
    """Reads the stock and the reservations every `interval` seconds while the run goes
    on: no article is ever below zero, and what is available plus what live reservations
    hold is always the initial stock (reservations never exceed it). Conservation at the
    end alone misses an oversell that later releases put right."""

    def __init__(self, config: WorkerConfig, initial: dict[str, int],
                 interval: float = 0.5) -> None:
        self.initial = initial
        self.interval = interval
        self.samples = 0
        self.violations: list[Violation] = []
        self._seen: set[str] = set()
        url = config.database_url
        if url.startswith("postgresql"):
            self.engine = create_async_engine(
                "postgresql+asyncpg://" + url.partition("://")[2], pool_size=1,
                max_overflow=0, connect_args={"server_settings": {
                    "search_path": config.schema or "public",
                    "application_name": "stepsaga-reliability-sampler"}})
        else:
            self.engine = create_async_engine(url, connect_args={"timeout": 5})

    async def sample(self) -> None:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_STOCK_AND_HELD, {"reserved": RESERVED})).all()
        self.samples += 1
        for sku, available, held in rows:
            start = self.initial.get(sku)
            if start is None:
                continue
            if available < 0 and f"{sku}<0" not in self._seen:
                self._seen.add(f"{sku}<0")
                self.violations.append((None, f"stock of {sku} went below zero: {available}"))
            if available + held != start and f"{sku}!=" not in self._seen:
                self._seen.add(f"{sku}!=")
                self.violations.append((None, f"stock of {sku}: {available} available + "
                                              f"{held} reserved, not the {start} there were"))

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                with contextlib.suppress(Exception):  # the database may be down now
                    await self.sample()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval)
            with contextlib.suppress(Exception):
                await self.sample()
        finally:
            await self.engine.dispose()


async def stock_now(store: SagaStore, initial: dict[str, int]) -> dict[str, int | None]:
    return await stock_levels(store, initial)


def check_stock_floor(initial: dict[str, int], available: dict[str, int | None]
                      ) -> list[Violation]:
    """No article ends below zero."""
    return [(None, f"stock of {sku} ends below zero: {available[sku]}")
            for sku in initial if (available[sku] or 0) < 0]


# -- the engine's own records ----------------------------------------------------------------

async def check_history(store: SagaStore, orders: Sequence[PlannedOrder]) -> list[Violation]:
    """One history row per saga, message id and event (a message applied once: the
    inbox; a message that also completes a composite event has a row for that), and
    each row starts in the state the previous one ended in (one transition at a time:
    the instance's version check)."""
    found: list[Violation] = []
    for order in orders:
        history = await store.history("OrderSaga", order.order_id)
        # A message that completes a composite event has a row for each: (id, event).
        twice = [m for m, n in Counter((r.message_id, r.event) for r in history).items()
                 if n > 1]
        if twice:
            found.append((order.order_id, f"message(s) applied more than once: {twice[:3]}"))
        for before, after in itertools.pairwise(history):
            if after.from_state != before.to_state:
                found.append((order.order_id, f"{after.event} applied in {after.from_state} "
                                              f"after {before.event} had moved the saga to "
                                              f"{before.to_state}"))
                break
    return found


def drain_dlqs(sqs: Any, prefix: str) -> list[tuple[str, str]]:
    """Every message in the run's dead-letter queues, as (queue, body)."""
    found: list[tuple[str, str]] = []
    for queue in ALL_QUEUES:
        url = sqs.get_queue_url(QueueName=f"{prefix}{queue}-dlq")["QueueUrl"]
        empty = 0
        while empty < 2:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                      VisibilityTimeout=3600, WaitTimeSeconds=0)
            messages = got.get("Messages", [])
            empty = 0 if messages else empty + 1
            found.extend((queue, m["Body"]) for m in messages)
    return found


async def check_dlqs(store: SagaStore, dead_lettered: Sequence[tuple[str, str]]
                     ) -> list[Violation]:
    """Every message in a DLQ is in the error store with its reason: the worker put it
    there. One that is not was moved by SQS's own redrive (maxReceiveCount reached
    before the worker's dead-letter path ran), and nobody knows why."""
    errors = await store.list_errors(limit=100_000)
    found: list[Violation] = []
    for queue, body in dead_lettered:
        message_id = None
        with contextlib.suppress(ValueError, AttributeError):
            message_id = json.loads(body).get("messageId")
        markers = set(_markers(body))
        record = next((r for r in errors if r.body == body or body.startswith(r.body)
                       or (message_id and r.message_id == message_id)
                       or (markers and markers & set(_markers(r.body)))), None)
        if record is None:
            found.append((None, f"a message in the DLQ of {queue} is not in the error store: "
                                f"{body[:200]!r}"))
        elif not record.reason:
            found.append((record.correlation_id, f"a message in the DLQ of {queue} has no "
                                                 "reason in the error store"))
    return found


@dataclass(frozen=True)
class SupervisionFaults:
    """What the supervision faults of a run touched."""

    rule_off: Sequence[tuple[float, float]] = ()
    """When the supervision rules were disabled (wall-clock start, end)."""
    aborted: set[str] = field(default_factory=set)
    """Orders one of whose supervisor executions the run stopped."""
    slack: float = 2.0
    """Seconds the saga's clock may be off the harness's (a worker's skewed clock)."""

    def explains(self, order_id: str, records: Sequence[HandoffRecord]) -> str | None:
        """Why `order_id` may have ended ``supervision_lost``, or None: its lost hand-off
        was given up ``not_started`` and a publish of it fell while the rules were off
        (first published before they were back, given up after they went off), or it
        was lost ``execution_aborted`` and the run stopped one of its executions."""
        for record in records:
            if record.lost == ABORTED_CAUSE and order_id in self.aborted:
                return "its execution was stopped"
            if record.lost == RULE_OFF_CAUSE and record.lost_at is not None:
                first, given_up = record.requested_at.timestamp(), record.lost_at.timestamp()
                if any(first <= end + self.slack and given_up >= start - self.slack
                       for start, end in self.rule_off):
                    return "its hand-off was published while the rules were off"
        return None


async def handoff_counts(store: SagaStore, orders: Sequence[PlannedOrder]) -> Counter[str]:
    """How the run's hand-offs went, for the report: re-published, lost (by cause)."""
    found: Counter[str] = Counter()
    for order in orders:
        saga = await store.get_instance("OrderSaga", order.order_id)
        for record in handoffs_of(saga.data if saga is not None else {}):
            if record.publishes > 1:
                found["hand-off re-published"] += 1
            if record.lost:
                found[f"hand-off lost: {record.lost}"] += 1
    return found


async def check_planned_endings(store: SagaStore, orders: Sequence[PlannedOrder],
                                ended: dict[str, Ending], submitted_at: dict[str, float],
                                windows: Sequence[tuple[float, float]],
                                contradicted: set[str],
                                supervision: SupervisionFaults | None = None
                                ) -> list[Violation]:
    """Every ended order ended as planned (:data:`.plan.EXPECTED`), or on a deadline
    while a fault delayed it (:data:`.plan.DELAYED_ENDINGS`; `windows`: when a fault
    delayed every order under way), or — a ``review-reject`` order — Completed because a
    contradicting click decided first (`contradicted`), or ``supervision_lost`` with the
    cause a supervision fault that touched it brings about (`supervision`: the rules
    off while its hand-off was published, its execution stopped). Anything else is how
    a lost message shows: the saga waited for it until a deadline, or went another
    way."""
    supervision = supervision or SupervisionFaults()
    found: list[Violation] = []
    for order in orders:
        end = ended[order.order_id]
        label = end.label
        if end.status not in TERMINAL or label in EXPECTED[order.path]:
            continue
        if order.path == REVIEW_REJECT and label == "Completed" and \
                order.order_id in contradicted:
            continue
        if label in DELAYED_ENDINGS:
            saga = await store.get_instance("OrderSaga", order.order_id)
            begun = submitted_at.get(order.order_id, 0.0)
            finished = saga.updated_at.timestamp() if saga is not None else float("inf")
            if any(start <= finished and begun <= until for start, until in windows):
                continue
        if label == SUPERVISION_LOST:
            saga = await store.get_instance("OrderSaga", order.order_id)
            records = handoffs_of(saga.data if saga is not None else {})
            if supervision.explains(order.order_id, records):
                continue
            causes = ", ".join(f"{r.workflow} {r.lost}" for r in records if r.lost) or "none"
            found.append((order.order_id, f"ended {label} (lost: {causes}), and no "
                                          "supervision fault touched it that way"))
            continue
        found.append((order.order_id, f"ended {label}, planned "
                                      f"{' or '.join(sorted(EXPECTED[order.path]))}, and no "
                                      "fault explains it (a lost message?)"))
    return found
