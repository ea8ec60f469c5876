"""What a reliability run does: its options, the orders' paths, the fault rates and the
short timings that make every path end within seconds.

Each order's path is written into its id (``rel-00042-carrier-long``), so every worker
process, restarted or not, knows how the fake gateway and carrier treat it without
sharing memory with the harness.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from supervisor_workflows import ManualReviewTimings, SlowShippingTimings

# -- the orders -------------------------------------------------------------------------------

HAPPY = "happy"
DECLINED = "declined"
SCARCE = "scarce"
"""Orders for an article with too little stock: some are refunded after payment."""
CARRIER_SHORT = "carrier-short"
"""The carrier refuses the order for less than the saga needs to give up."""
CARRIER_LONG = "carrier-long"
"""The carrier refuses it for good: SlowShipping gives up, the saga compensates."""
CARRIER_SILENT_SHORT = "silent-short"
"""The carrier's label call times out for a while (redelivery), then works."""
CARRIER_SILENT_LONG = "silent-long"
"""The label call times out past the saga's shipping deadline: the deadline fires."""
REVIEW_APPROVE = "review-approve"
REVIEW_REJECT = "review-reject"
REVIEW_TIMEOUT = "review-timeout"
CONCURRENT = "concurrent"
"""A happy order whose ``PaymentCharged`` is sent several times at once (new message
ids): one saga event handled by several workers at the same moment."""

PATH_WEIGHTS: dict[str, float] = {
    HAPPY: 0.50, DECLINED: 0.08, SCARCE: 0.10, CARRIER_SHORT: 0.06, CARRIER_LONG: 0.04,
    CARRIER_SILENT_SHORT: 0.05, CARRIER_SILENT_LONG: 0.04, REVIEW_APPROVE: 0.05,
    REVIEW_REJECT: 0.04, REVIEW_TIMEOUT: 0.04, CONCURRENT: 0.05,
}
PATHS = tuple(PATH_WEIGHTS)

REVIEW_PATHS = (REVIEW_APPROVE, REVIEW_REJECT, REVIEW_TIMEOUT)
REFUSED_PATHS = (CARRIER_SHORT, CARRIER_LONG)
SILENT_PATHS = (CARRIER_SILENT_SHORT, CARRIER_SILENT_LONG)

STOCK = {"BOOK-1": 100_000, "MUG-1": 100_000, "SCARCE-1": 0}
"""SCARCE-1's level is set per run: about half the scarce orders get it."""
PRICES = {"BOOK-1": Decimal("12.50"), "MUG-1": Decimal("8.90"), "SCARCE-1": Decimal("42.00")}

OUTAGE_SECONDS = {CARRIER_SHORT: 1.0, CARRIER_LONG: 3600.0,
                  CARRIER_SILENT_SHORT: 1.5, CARRIER_SILENT_LONG: 3600.0}
"""How long, from its first label call, the carrier fails an order of each path."""

EXPECTED: dict[str, frozenset[str]] = {
    HAPPY: frozenset({"Completed"}),
    DECLINED: frozenset({"Canceled:payment_declined"}),
    SCARCE: frozenset({"Completed", "Canceled:inventory_unavailable"}),
    CARRIER_SHORT: frozenset({"Completed"}),
    CARRIER_LONG: frozenset({"Canceled:shipping_abandoned"}),
    CARRIER_SILENT_SHORT: frozenset({"Completed"}),
    CARRIER_SILENT_LONG: frozenset({"Canceled:shipping_deadline"}),
    REVIEW_APPROVE: frozenset({"Completed"}),
    REVIEW_REJECT: frozenset({"Canceled:review_rejected"}),
    REVIEW_TIMEOUT: frozenset({"Canceled:review_timed_out"}),
    CONCURRENT: frozenset({"Completed"}),
}
"""Where each path should end."""

DELAYED_ENDINGS = frozenset({"Canceled:shipping_deadline", "Canceled:shipping_abandoned",
                             "Canceled:review_timed_out"})
"""The off-plan endings a delay explains: a deadline fired (the saga's shipping deadline,
SlowShipping's, the review's) because the order waited — behind a killed worker's
invisible messages, a database or AWS outage, a frozen transaction. They are legitimate
only for an order that was under way while such a fault lasted (the harness keeps each
fault's window); any other off-plan ending, or a deadline ending no fault explains, is
what a lost message looks like, and a violation. The one other legitimate case: a
``review-reject`` order Completed because the contradicting second click decided first
(the harness notes it)."""

SUPERVISION_LOST = "Canceled:supervision_lost"
"""The ending of an order whose hand-off will not come back. Legitimate only for the
orders the two supervision faults touched, and only for the cause each brings about:"""
RULE_OFF_CAUSE = "not_started"
"""The supervision rules were disabled while every publish of the order's hand-off went
on the bus (each re-publish, after the started deadline, was swallowed too)."""
ABORTED_CAUSE = "execution_aborted"
"""The harness stopped the order's supervisor execution (StopExecution): Step Functions'
ABORTED status event reached the saga before the workflow's outcome."""


def path_of(order_id: str) -> str:
    """The path written into an order id (``rel-00042-carrier-long`` → carrier-long)."""
    for path in PATHS:
        if order_id.endswith("-" + path):
            return path
    return HAPPY


@dataclass(frozen=True)
class PlannedOrder:
    """One order of a run."""

    order_id: str
    path: str
    lines: tuple[tuple[str, int], ...]

    @property
    def amount(self) -> Decimal:
        return sum((PRICES[sku] * quantity for sku, quantity in self.lines), Decimal(0))

    @property
    def risk_flags(self) -> tuple[str, ...]:
        return ("reliability-check",) if self.path in REVIEW_PATHS else ()


def plan_orders(count: int, rng: random.Random, paths: tuple[str, ...] | None = None
                ) -> list[PlannedOrder]:
    """`count` orders with paths drawn from :data:`PATH_WEIGHTS` (only `paths`, when
    given: a targeted run)."""
    orders = []
    chosen = paths or PATHS
    unknown = set(chosen) - set(PATHS)
    if unknown:
        raise ValueError(f"unknown paths {sorted(unknown)}: choose among {', '.join(PATHS)}")
    for number in range(count):
        path = rng.choices(chosen, weights=[PATH_WEIGHTS[p] for p in chosen])[0]
        lines: list[tuple[str, int]] = [("BOOK-1", rng.randint(1, 3))]
        if rng.random() < 0.5:
            lines.append(("MUG-1", rng.randint(1, 2)))
        if path == SCARCE:
            lines = [("SCARCE-1", 1), *lines]
        orders.append(PlannedOrder(f"rel-{number:05d}-{path}", path, tuple(lines)))
    return orders


# -- the faults -------------------------------------------------------------------------------

@dataclass(frozen=True)
class FaultRates:
    """How often each fault happens. Per-message and per-call rates are shares; the
    harness's own faults come every so many seconds on average."""

    gateway_transient: float = 0.10
    """Gateway calls that fail (half of them after the gateway did the work)."""
    duplicate: float = 0.05
    """Received messages whose body a worker puts back on the queue (a duplicate)."""
    delay: float = 0.05
    """Sent messages held back 1–3 s, so they arrive out of order."""
    kill_every: float = 8.0
    """Mean seconds between SIGKILLs of a worker process (restarted 0.5–2 s later); for
    this and the other periodic faults, 0 turns it off."""
    db_cut_every: float = 3.0
    """Mean seconds between cut database connections (PostgreSQL)."""
    put_events_fail_every: float = 4.0
    """Mean seconds between PutEvents calls made to fail partially."""
    malformed_every: float = 1.5
    """Mean seconds between malformed or oversize messages put on a queue."""
    callback_twice: float = 0.5
    """Review decisions sent twice (and, for rejections, contradicted)."""
    callback_invalid: float = 0.5
    """Review decisions preceded by a call with an invalid task token."""
    refund_lost_answer: bool = True
    """Every order's first refund call loses its answer after the gateway refunded: the
    retried refund must be the same one (its idempotency key)."""
    concurrent_copies: int = 3
    """Copies of ``PaymentCharged`` sent at once for the ``concurrent`` orders."""
    db_outage_seconds: float = 30.0
    """The database down this long, once: PostgreSQL stopped ``-m immediate`` (a cluster
    of the run's own) and started again; SQLite's disk full (a small tmpfs filled up)."""
    aws_outage_seconds: float = 600.0
    """AWS unreachable this long, once: the workers' TCP proxy to the emulator refuses
    connections and drops the open ones."""
    freeze_seconds: float = 20.0
    """A process frozen (SIGSTOP) this long with a transaction open on the hot row (the
    stock of BOOK-1, in most orders), once (PostgreSQL)."""
    clock_skew_seconds: float = 15.0
    """How far ahead one worker's clock runs, the whole run (PostgreSQL: on SQLite the
    host's clock is the clock)."""
    rule_off_seconds: float = 20.0
    """The supervision rules (``supervision-ManualReview``, ``supervision-SlowShipping``)
    disabled this long, once, from when a tenth of the orders are in: hand-offs put on
    the bus meanwhile reach no workflow. With the run's started deadline
    (:attr:`Timings.supervision_started_deadline`) and the shipped 3 re-publishes, a
    hand-off first published more than four deadlines before the rules are back ends
    ``supervision_lost``; a later one is re-published after they are back."""
    abort_every: float = 5.0
    """Mean seconds between StopExecution calls on a running ManualReview or
    SlowShipping execution (one picked at random among those of even-numbered orders:
    the odd ones keep their planned supervision paths)."""


NO_FAULTS = FaultRates(gateway_transient=0, duplicate=0, delay=0, kill_every=0,
                      db_cut_every=0, put_events_fail_every=0, malformed_every=0,
                      callback_twice=0, callback_invalid=0, refund_lost_answer=False,
                      concurrent_copies=0, db_outage_seconds=0, aws_outage_seconds=0,
                      freeze_seconds=0, clock_skew_seconds=0, rule_off_seconds=0,
                      abort_every=0)
"""A fault-free baseline (the orders' own paths still decline, run short and so on)."""


@dataclass(frozen=True)
class Timings:
    """Short versions of every duration, so that the slow paths end in seconds."""

    shipping_deadline: timedelta = timedelta(seconds=12)
    shipping_retry_initial: timedelta = timedelta(seconds=0.4)
    shipping_retry_max: timedelta = timedelta(seconds=1.5)
    shipping_retry_budget: int = 3
    review: ManualReviewTimings = field(default_factory=lambda: ManualReviewTimings(
        review_timeout_seconds=6, escalation_timeout_seconds=3,
        delivery_timeout_seconds=5, delivery_max_attempts=3))
    shipping: SlowShippingTimings = field(default_factory=lambda: SlowShippingTimings(
        deadline_seconds=5, interval_seconds=1, backoff_rate=1.5, max_delay_seconds=2,
        attempt_timeout_seconds=5, delivery_timeout_seconds=5, delivery_max_attempts=3))
    visibility_seconds: int = 4
    """The queues' visibility timeout: how soon a killed worker's messages come back."""
    supervision_started_deadline: timedelta = timedelta(seconds=5)
    """How long each publish of a hand-off waits for ``SupervisionStarted`` (the shipped
    ``HandOffConfig.started_deadline`` is 5 minutes): a speed setting of a short run, so
    that a hand-off swallowed by a disabled rule is re-published, or given up, in
    seconds. The re-publishes stay the shipped 3. Long enough that no other fault of a
    run (a killed worker, an outage) keeps ``SupervisionStarted`` away for four of
    them."""


TIMINGS = Timings()
"""The timings of every run: the harness provisions with them, the workers run with them."""

MAX_MESSAGE_BYTES = 64 * 1024
"""The workers' size limit in a run; the oversize messages are a little over it."""
