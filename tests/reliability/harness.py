"""The fault-injection harness: N orders through the full stack on the emulator, with
faults injected from every side, then the invariants over everything that happened.

Run it alone::

    .venv/bin/python -m tests.reliability --orders 300 --database sqlite
    .venv/bin/python -m tests.reliability --orders 2000 --database postgres --seed 1234

What it injects, and from where:

- in the worker processes (:mod:`.worker`): payment declines and transient gateway
  errors (half after the gateway did the work), inventory shortages, carrier outages
  shorter and longer than the deadlines (refusals and silent timeouts), duplicate
  delivery of received messages (the same body put back), out-of-order delivery
  (sends held back 1–3 s);
- here: SIGKILL of a worker process at random moments (restarted 0.5–2 s later), cut
  database connections (``pg_terminate_backend`` on a worker's backend, mid-transaction
  when one is open; PostgreSQL only), partial PutEvents failures on the bus, review
  decisions sent twice, contradicted, with an invalid task token first, or late (after
  the workflow timed the review out), and malformed and oversize messages on every
  queue;
- here, once each (:mod:`.outages`): the database down (PostgreSQL stopped ``-m
  immediate`` and started again, on a cluster of the run's own; SQLite's disk full),
  a process frozen with a transaction open on the hot row (PostgreSQL), AWS unreachable
  (the workers reach the emulator through a proxy that stops listening); and one
  worker's clock running ahead (PostgreSQL);
- here, on the supervision side: the supervision rules disabled for a while (hand-offs
  put on the bus meanwhile reach no workflow: the saga re-publishes them after its
  started deadline, or gives them up as ``supervision_lost``), and running supervisor
  executions stopped (StopExecution: the saga learns of the ABORTED execution through
  Step Functions' status event and cancels the order).

The seed is printed; ``--seed`` replays the same orders, paths and the harness's own
fault schedule (the workers' faults also draw on their process ids, and the interleaving
of processes is the operating system's, so a replay is close, not exact).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bridge import ReviewService, ReviewStore
from bridge.reviews import DecisionResult, StepFunctions, TaskGoneError
from bridge.timeline import build_timeline
from core_saga import AwsConfig as StepFunctionsConfig
from core_saga import Outbox
from core_saga.emulator import Emulator, patched_environ, start_emulator
from core_saga.persistence import AsyncpgStore
from examples.order_to_cash import create_tables
from examples.order_to_cash.app import build_topology, provision_local
from examples.order_to_cash.inventory import set_stock_levels
from examples.order_to_cash.orders import OrderRequest, OrderService
from examples.order_to_cash.queues import ALL_QUEUES
from examples.order_to_cash.saga import OrderSaga

from . import invariants
from .fakes import create_fake_tables, fakes_engine
from .outages import AwsProxy, FrozenTransaction, SmallDisk
from .plan import (
    EXPECTED,
    MAX_MESSAGE_BYTES,
    PRICES,
    REVIEW_APPROVE,
    REVIEW_REJECT,
    REVIEW_TIMEOUT,
    SCARCE,
    STOCK,
    TIMINGS,
    FaultRates,
    PlannedOrder,
    path_of,
    plan_orders,
)
from .worker import APPLICATION_NAME, WorkerConfig, open_store

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class RunOptions:
    """What a run is asked for."""

    orders: int = 300
    database: str = "sqlite"
    """``sqlite`` or ``postgres``."""
    seed: int | None = None
    workers: int = 2
    rate: float = 8.0
    """Orders submitted per second: about what two workers on the emulator carry (the
    emulator is the bottleneck); far above it, a backlog builds up on the standard
    queues and the short deadlines cancel orders that merely waited."""
    bound: float = 90.0
    """Seconds after the last submission within which every order must have ended."""
    workdir: Path = field(default_factory=lambda: Path(".stepsaga/reliability"))
    endpoint_url: str | None = None
    """An emulator already running (tests pass the session's); None: start one."""
    postgres_url: str = DEFAULT_PG
    faults: FaultRates = field(default_factory=FaultRates)
    verbose: bool = True
    paths: tuple[str, ...] | None = None
    """Only orders of these paths (a targeted run); None: every path, by its weight."""


@dataclass
class RunReport:
    """What a run did and found."""

    seed: int
    database: str
    orders: int
    seconds: float = 0.0
    injected: Counter[str] = field(default_factory=Counter)
    violations: list[invariants.Violation] = field(default_factory=list)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(path, ending) → orders."""
    timelines: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """Faults that could not be injected here, and why."""

    @property
    def ok(self) -> bool:
        return not self.violations

    def render(self) -> str:
        lines = [f"reliability run: {self.orders} orders on {self.database}, seed "
                 f"{self.seed}, {self.seconds:.0f} s",
                 "faults injected: " + ", ".join(f"{kind} {n}" for kind, n
                                                  in sorted(self.injected.items())),
                 *(f"not injected: {note}" for note in self.notes),
                 "endings by path (planned ending marked *):"]
        for (path, ending), n in sorted(self.outcomes.items()):
            mark = "*" if ending in EXPECTED[path] else " "
            lines.append(f"  {path:<15} {mark} {ending:<32} {n}")
        lines.append(f"violations: {len(self.violations)}")
        for order_id, text in self.violations[:50]:
            lines.append(f"  {order_id or '-'}: {text}")
        for order_id, timeline in self.timelines.items():
            lines.append(f"--- timeline of {order_id} ---\n{timeline}")
        return "\n".join(lines)


class Workers:
    """The worker processes: start, SIGKILL, restart, stop."""

    def __init__(self, configs: list[WorkerConfig], logs: Path) -> None:
        self.unready_at_stop: list[int] = []
        """The workers still starting when :meth:`stop_all` signalled them."""
        self.configs = configs
        self.logs = logs
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, index: int) -> None:
        log = (self.logs / f"worker-{index}.log").open("ab")
        self.processes[index] = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.worker", self.configs[index].to_json()],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def start_all(self) -> None:
        for index in range(len(self.configs)):
            self.start(index)

    def kill(self, index: int) -> None:
        process = self.processes[index]
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def ensure_running(self) -> None:
        for index, process in self.processes.items():
            if process.poll() is not None:
                self.start(index)

    def is_ready(self, index: int) -> bool:
        """Whether the current process of `index` has said it is ready (its handlers for
        SIGTERM are installed only then; before, SIGTERM ends it like any program)."""
        process = self.processes[index]
        log = self.logs / f"worker-{index}.log"
        line = f"worker {index} ready (pid {process.pid})"
        return log.exists() and line in log.read_text(errors="replace")

    def stop_all(self, timeout: float = 60.0, ready_timeout: float = 120.0
                 ) -> list[int | None]:
        """SIGTERM every worker once it is ready (one restarted just before the end may
        still be importing: on a loaded machine that can take tens of seconds) and
        collect the exit codes; None: it had to be killed. A clean stop may take the
        worker's shutdown grace (30 s by default: a message in a retry's backoff is
        still in flight) and then its last sends and deletes: `timeout` leaves room
        for both."""
        deadline = time.monotonic() + ready_timeout
        self.unready_at_stop = []
        for index, process in self.processes.items():
            while (process.poll() is None and not self.is_ready(index)
                   and time.monotonic() < deadline):
                time.sleep(0.1)
            if process.poll() is None:
                if not self.is_ready(index):
                    self.unready_at_stop.append(index)
                process.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for process in self.processes.values():
            try:
                codes.append(process.wait(timeout))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(None)
        return codes


ORDER_ID = re.compile(r"rel-(\d{5})-[a-z-]+")
"""An order id of a run (its number in the group), as found in an execution's input."""

MALFORMED_KINDS = ("not JSON", "unknown type", "invalid payload", "oversize")
"""The kinds of malformed message the chaos puts on the queues."""


def malformed_body(kind: str, marker: str) -> str:
    """A malformed message body of `kind` that carries `marker` near its start (so the
    error store's copy, however truncated, still names it)."""
    return {
        "not JSON": f"{{{marker} is not json",
        "unknown type": json.dumps({"messageId": marker, "messageType":
                                    "urn:message:chaos:Nope:v1", "message": {}}),
        "invalid payload": json.dumps({
            "messageId": marker,
            "messageType": "urn:message:order_to_cash:OrderSubmitted:v1",
            "message": {"orderId": marker, "amount": "not money"}}),
        "oversize": json.dumps({"messageId": marker, "messageType": "urn:message:x:Y:v1",
                                "message": {"pad": "x" * (MAX_MESSAGE_BYTES + 100)}}),
    }[kind]


class Chaos:
    """The faults injected from outside the workers, each on its own task."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.rng = random.Random(run.seed ^ 0x5EED)
        self.stop = asyncio.Event()
        self.malformed: dict[str, str] = {}
        """marker → what was injected where."""
        self.decisions: Counter[str] = Counter()
        """review id → decisions that changed it."""
        self._handled: set[str] = set()

    async def _every(self, mean: float, act: Callable[[], Coroutine[Any, Any, None]]) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.rng.expovariate(1 / mean))
                return
            try:
                await act()
            except Exception as exc:  # a fault that could not be injected is reported
                self.run.note(f"chaos: {type(exc).__name__}: {exc}")

    def tasks(self) -> list[asyncio.Task[None]]:
        faults = self.run.options.faults
        periodic = [(faults.kill_every, self.kill_worker),
                    (faults.put_events_fail_every, self.fail_put_events),
                    (faults.malformed_every, self.send_malformed)]
        if self.run.options.database == "postgres":
            periodic.append((faults.db_cut_every, self.cut_connection))
        periodic.append((faults.abort_every, self.abort_execution))
        jobs = [self._every(mean, act) for mean, act in periodic if mean > 0]  # 0: off
        if faults.rule_off_seconds > 0:
            jobs.append(self.rules_off(faults.rule_off_seconds))
        return [asyncio.create_task(job) for job in [*jobs, self.review_loop()]]

    # -- process and infrastructure faults --------------------------------------------------
    async def kill_worker(self) -> None:
        index = self.rng.randrange(len(self.run.workers.configs))
        begun = time.time()
        self.run.workers.kill(index)
        self.run.injected["sigkill"] += 1
        await asyncio.sleep(self.rng.uniform(0.5, 2.0))
        self.run.workers.start(index)
        # Its messages come back after the visibility timeout, to a worker that may
        # still be starting: the orders they belong to are delayed that long.
        self.run.delayed(begun, time.time() + 2 * TIMINGS.visibility_seconds + 5)

    async def cut_connection(self) -> None:
        conn = await asyncpg.connect(self.run.pg_url)
        try:
            cut = await conn.fetchval(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = $1 ORDER BY (state = 'idle') , random() LIMIT 1",
                APPLICATION_NAME)
        finally:
            await conn.close()
        if cut:
            self.run.injected["db connection cut"] += 1
            self.run.delayed(time.time(), time.time() + TIMINGS.visibility_seconds + 5)

    async def fail_put_events(self) -> None:
        entries = self.rng.randint(1, 3)
        await asyncio.to_thread(self.run.emulator.fail_put_events, entries,
                                bus=self.run.bus)
        self.run.injected["PutEvents entry failed"] += entries

    async def send_malformed(self) -> None:
        queue = self.rng.choice(ALL_QUEUES)
        number = len(self.malformed) + 1
        marker = f"chaos-bad-{number}"
        kind = self.rng.choice(MALFORMED_KINDS)
        body = malformed_body(kind, marker)
        url = self.run.queue_urls[queue]
        await asyncio.to_thread(self.run.sqs.send_message, QueueUrl=url, MessageBody=body)
        self.malformed[marker] = f"{kind} message on {queue}"
        self.run.injected[f"malformed: {kind}"] += 1

    # -- supervision faults -----------------------------------------------------------------
    async def rules_off(self, seconds: float) -> None:
        """Disable the supervision rules for `seconds`, once, from when a tenth of the
        orders are in (while orders are still handed off); enabled again even when the
        run is being stopped. The window (from just before the first DisableRule to just
        after the last EnableRule) is what explains a ``not_started`` loss."""
        run = self.run
        while run.submitted < max(1, run.options.orders // 10) and not self.stop.is_set():
            await asyncio.sleep(0.2)
        if self.stop.is_set():
            return
        begun = time.time()
        try:
            for rule in run.supervision_rules:
                await asyncio.to_thread(run.events.disable_rule, Name=rule,
                                        EventBusName=run.bus)
            run.injected["supervision rules disabled"] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), seconds)
        finally:
            for rule in run.supervision_rules:
                await asyncio.to_thread(run.events.enable_rule, Name=rule,
                                        EventBusName=run.bus)
            run.rule_off.append((begun, time.time()))
        run.say(f"  the supervision rules were disabled for {time.time() - begun:.0f} s")

    async def abort_execution(self) -> None:
        """StopExecution on one running ManualReview or SlowShipping execution of an
        even-numbered order (the odd ones keep their planned supervision paths); its
        order may end ``supervision_lost`` (``execution_aborted``)."""
        run = self.run
        candidates: list[tuple[str, str]] = []
        for machine in run.state_machines.values():
            listed = await asyncio.to_thread(run.sfn.list_executions,
                                             stateMachineArn=machine,
                                             statusFilter="RUNNING", maxResults=100)
            for execution in listed["executions"]:
                arn = execution["executionArn"]
                described = await asyncio.to_thread(run.sfn.describe_execution,
                                                    executionArn=arn)
                found = ORDER_ID.search(described.get("input") or "")
                if found is None:
                    raise RuntimeError(f"no order id in the input of execution {arn}")
                if int(found.group(1)) % 2 == 0:
                    candidates.append((arn, found.group(0)))
        if not candidates:
            return
        arn, order_id = self.rng.choice(sorted(candidates))
        run.aborted.add(order_id)  # before the stop: the saga may hear of it at once
        try:
            await asyncio.to_thread(run.sfn.stop_execution, executionArn=arn,
                                    cause="the reliability run aborts it")
        except run.sfn.exceptions.ExecutionDoesNotExist:
            return
        run.injected["execution aborted"] += 1

    async def outages(self) -> None:
        """The long faults, once each and one after the other, from when a fifth of the
        orders are in: the database down, a transaction frozen on the hot row, AWS
        unreachable. Each ends (the database back, the process thawed, the proxy
        listening) even when the run is being stopped."""
        run, faults = self.run, self.run.options.faults
        while run.submitted < max(1, run.options.orders // 5):
            await asyncio.sleep(0.2)
        if faults.db_outage_seconds > 0:
            await self._database_down(faults.db_outage_seconds)
        if faults.freeze_seconds > 0 and run.options.database == "postgres":
            await self._freeze(faults.freeze_seconds)
        if faults.aws_outage_seconds > 0:
            await self._aws_down(faults.aws_outage_seconds)

    async def _database_down(self, seconds: float) -> None:
        run = self.run
        begun = time.time()
        if run.cluster is not None:
            run.database_down = True
            try:
                await asyncio.to_thread(run.cluster.stop, "immediate")
                run.injected["database down (stopped -m immediate)"] += 1
                await asyncio.sleep(seconds)
            finally:
                await asyncio.to_thread(run.cluster.start)
                run.database_down = False
        elif run.disk is not None:
            run.database_down = True
            try:
                await asyncio.to_thread(run.disk.fill)
                run.injected["sqlite disk full"] += 1
                await asyncio.sleep(seconds)
            finally:
                run.disk.free()
                run.database_down = False
        else:
            return
        run.say(f"  the database was down for {time.time() - begun:.0f} s")
        run.delayed(begun, time.time() + 20)

    async def _freeze(self, seconds: float) -> None:
        run = self.run
        assert run.schema is not None
        frozen = FrozenTransaction(run.pg_url, run.schema, "BOOK-1")
        begun = time.time()
        try:
            await frozen.freeze()
            run.injected["frozen transaction on the hot row"] += 1
            await asyncio.sleep(seconds)
        finally:
            await frozen.thaw_and_end()
        run.delayed(begun, time.time() + 20)

    async def _aws_down(self, seconds: float) -> None:
        run = self.run
        if run.proxy is None:
            return
        begun = time.time()
        try:
            await run.proxy.down()
            run.injected["AWS unreachable"] += 1
            await asyncio.sleep(seconds)
        finally:
            await run.proxy.up()
        run.say(f"  AWS was unreachable for {time.time() - begun:.0f} s")
        run.delayed(begun, time.time() + 30)

    # -- the people, with their callbacks ---------------------------------------------------
    async def review_loop(self) -> None:
        while not self.stop.is_set():
            try:
                if not self.run.database_down:
                    await self._review_round()
            except Exception as exc:
                self.run.note(f"reviewer: {type(exc).__name__}: {exc}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 0.3)

    async def _review_round(self) -> None:
        run = self.run
        for review in await run.reviews.list_reviews(status="pending", limit=1000):
            if review.id in self._handled:
                continue
            path = path_of(review.correlation_id)
            faults = run.options.faults
            if path == REVIEW_TIMEOUT:
                saga = await run.store.get_instance("OrderSaga", review.correlation_id)
                if saga is None or saga.state != "Canceled":
                    continue
                self._handled.add(review.id)
                late = await run.service.approve(review.id, reviewer="late")
                run.injected["late callback"] += 1
                if late.changed:
                    self.decisions[review.id] += 1
                    run.violations.append((review.correlation_id, f"a late approve "
                                           f"changed a timed-out review: {late.message}"))
                continue
            if path not in (REVIEW_APPROVE, REVIEW_REJECT):
                continue
            self._handled.add(review.id)
            if self.rng.random() < faults.callback_invalid:
                await self._invalid_token(review.correlation_id)
            decide = run.service.approve if path == REVIEW_APPROVE else functools.partial(
                run.service.reject, reason="the reliability run rejects it")
            results: tuple[DecisionResult, ...]
            if self.rng.random() < faults.callback_twice:
                other = run.service.approve  # a second click, possibly contradicting
                results = await asyncio.gather(decide(review.id, reviewer="ann"),
                                               other(review.id, reviewer="bob"))
                run.injected["callback twice"] += 1
            else:
                results = (await decide(review.id, reviewer="ann"),)
            self.decisions[review.id] += sum(r.changed for r in results)
            if path == REVIEW_REJECT and len(results) > 1 and results[1].changed:
                # The contradicting click won the race: the order goes on, as decided.
                run.note(f"{review.correlation_id}: the second click decided first")
                run.contradicted.add(review.correlation_id)

    async def _invalid_token(self, order_id: str) -> None:
        token = "AAAA" + secrets.token_urlsafe(90)
        try:
            await self.run.stepfunctions.send_task_success(token, '{"decision": "approved"}')
        except TaskGoneError:
            self.run.injected["invalid task token"] += 1
            return
        self.run.violations.append((order_id, "Step Functions accepted an invalid task token"))


class Run:
    """One run: set-up, orders, chaos, settling, checks."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.seed = options.seed if options.seed is not None else random.randrange(2**31)
        self.rng = random.Random(self.seed)
        self.injected: Counter[str] = Counter()
        self.violations: list[invariants.Violation] = []
        self.notes: list[str] = []
        self.windows: list[tuple[float, float]] = []
        """When a fault delayed every order under way (wall-clock start, end)."""
        self.submitted = 0
        self.submitted_at: dict[str, float] = {}
        self.contradicted: set[str] = set()
        """review-reject orders a contradicting second click approved first."""
        self.database_down = False
        self.cluster: Any = None
        self.disk: SmallDisk | None = None
        self.proxy: AwsProxy | None = None
        self.pg_url = options.postgres_url
        self.schema: str | None = None
        self.rule_off: list[tuple[float, float]] = []
        """When the supervision rules were disabled (wall-clock start, end)."""
        self.aborted: set[str] = set()
        """Orders one of whose supervisor executions the run stopped."""
        self.supervision_rules: list[str] = []
        self.state_machines: dict[str, str] = {}
        self.events: Any = None
        self.sfn: Any = None

    def delayed(self, begun: float, until: float) -> None:
        """Record a fault window: orders under way then may end on a deadline."""
        self.windows.append((begun, until))

    def skip(self, fault: str, why: str) -> None:
        self.notes.append(f"{fault} ({why})")
        self.say(f"  not injected: {fault} ({why})")

    def note(self, text: str) -> None:
        if self.options.verbose:
            print(f"  note: {text}", flush=True)

    def say(self, text: str) -> None:
        if self.options.verbose:
            print(text, flush=True)

    async def execute(self) -> RunReport:
        options = self.options
        started = time.monotonic()
        self.say(f"seed {self.seed} (replay with --seed {self.seed})")
        options.workdir.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            if options.endpoint_url:
                self.emulator = Emulator(options.endpoint_url)
            else:
                self.emulator = stack.enter_context(start_emulator())
            # The worker processes inherit it: fake credentials, the emulator's endpoint.
            stack.enter_context(patched_environ(self.emulator.env()))
            report = await self._execute()
        report.seconds = time.monotonic() - started
        return report

    async def _execute(self) -> RunReport:
        faults = self.options.faults
        try:
            if faults.aws_outage_seconds > 0:
                self.proxy = AwsProxy(self.emulator.endpoint_url)
                await self.proxy.up()
            if self.options.database == "postgres" and faults.db_outage_seconds > 0:
                if shutil.which("initdb") and shutil.which("pg_ctl"):
                    from tests.support.pg_cluster import PrivateCluster

                    self.cluster = PrivateCluster()
                    await asyncio.to_thread(self.cluster.start)
                    self.pg_url = self.cluster.url
                else:
                    self.skip("database down", "no initdb/pg_ctl for a cluster of the run's "
                              "own; the shared server is never stopped")
            return await self._provisioned()
        finally:
            if self.proxy is not None:
                await self.proxy.close()
            if self.cluster is not None:
                await asyncio.to_thread(self.cluster.remove)
            if self.disk is not None:
                self.disk.unmount()

    async def _provisioned(self) -> RunReport:
        options = self.options
        tag = secrets.token_hex(3)
        prefix = f"rel{tag}-"
        # The shipped maxReceiveCount (provision_local's default, as infra/ deploys).
        resources = await asyncio.to_thread(
            provision_local, self.emulator.boto3_client, prefix,
            manual_review=TIMINGS.review, slow_shipping=TIMINGS.shipping,
            visibility_timeout=TIMINGS.visibility_seconds)
        self.bus = resources.bus_name
        self.sqs = self.emulator.boto3_client("sqs")
        # The harness's own clients go straight to the emulator (not through the proxy).
        self.events = self.emulator.boto3_client("events")
        self.sfn = self.emulator.boto3_client("stepfunctions")
        self.state_machines = resources.state_machines
        self.supervision_rules = [f"{prefix}supervision-{workflow}"
                                  for workflow in resources.state_machines]
        self.stepfunctions = StepFunctions(StepFunctionsConfig(
            region=self.emulator.region, endpoint_url=self.emulator.endpoint_url))
        self.queue_urls = {q: self.sqs.get_queue_url(QueueName=prefix + q)["QueueUrl"]
                           for q in ALL_QUEUES}

        schema: str | None = None
        run_dir = options.workdir / prefix.rstrip("-")  # this run's logs (and SQLite files)
        run_dir.mkdir(parents=True, exist_ok=True)
        faults = options.faults
        if options.database == "postgres":
            schema = f"rel_{tag}"
            database_url, fakes_url = self.pg_url, self.pg_url
        else:
            saga_dir = run_dir
            if faults.db_outage_seconds > 0:
                # The saga's database on a disk of its own that the run fills up; the
                # outside systems' (gateway, carrier) stay on the ordinary disk.
                disk = SmallDisk(run_dir / "disk", 64 + options.orders // 10)
                if disk.mount():
                    self.disk, saga_dir = disk, disk.where
                else:
                    self.skip("sqlite disk full", disk.reason)
            database_url = f"sqlite+aiosqlite:///{saga_dir / 'saga.db'}"
            fakes_url = f"sqlite+aiosqlite:///{run_dir / 'outside.db'}"
        self.schema = schema
        skew = faults.clock_skew_seconds
        if skew and options.database != "postgres":
            self.skip("clock skew", "SQLite is a file on one host: its host's clock is the "
                      "clock")
            skew = 0
        elif skew:
            self.injected[f"clock {skew:g} s ahead (worker 0)"] += 1
        configs = [WorkerConfig(
            index=i, seed=self.seed, database_url=database_url, schema=schema,
            fakes_url=fakes_url,
            endpoint_url=self.proxy.url if self.proxy else self.emulator.endpoint_url,
            region=self.emulator.region, prefix=prefix, bus=resources.bus_name,
            gateway_transient=faults.gateway_transient,
            duplicate=faults.duplicate, delay=faults.delay,
            refund_lost_answer=faults.refund_lost_answer,
            concurrent_copies=faults.concurrent_copies,
            clock_skew_seconds=skew if i == 0 else 0.0)
            for i in range(options.workers)]
        # The harness's own connections are not among those it cuts.
        self.store = open_store(configs[0], application_name="stepsaga-reliability-harness")
        self.fakes = fakes_engine(fakes_url, schema)
        self.reviews = ReviewStore.open(self.store)
        try:
            return await self._with_database(configs, run_dir / "logs", prefix)
        finally:
            await self.reviews.close()
            await self.fakes.dispose()
            if isinstance(self.store, AsyncpgStore):  # PostgreSQL: the run's own schema,
                await self.store.drop_schema()       # the fakes' tables included
            await self.store.close()

    async def _with_database(self, configs: list[WorkerConfig], logs: Path, prefix: str
                             ) -> RunReport:
        options = self.options
        await create_tables(self.store)
        await self.reviews.create_table()
        await create_fake_tables(self.fakes)
        orders = plan_orders(options.orders, self.rng, options.paths)
        scarce = sum(o.path == SCARCE for o in orders)
        initial = {**STOCK, "SCARCE-1": scarce // 2}
        await set_stock_levels(self.store, initial)
        self.service = ReviewService(self.reviews, self.stepfunctions)
        logs.mkdir(parents=True, exist_ok=True)
        self.workers = Workers(configs, logs)
        self.workers.start_all()
        self.say(f"{options.workers} workers on {options.database}; submitting "
                 f"{len(orders)} orders at {options.rate:g}/s")
        chaos = Chaos(self)
        chaos_tasks = chaos.tasks()
        outages = asyncio.create_task(chaos.outages())
        sampler = invariants.StockSampler(configs[0], initial)
        sampling = asyncio.create_task(sampler.run(chaos.stop))
        faults = options.faults
        lost_after = TIMINGS.supervision_started_deadline.total_seconds() * 4  # 1 + 3
        bound = options.bound + faults.db_outage_seconds + faults.aws_outage_seconds + (
            faults.freeze_seconds if options.database == "postgres" else 0) + (
            faults.rule_off_seconds + lost_after if faults.rule_off_seconds > 0 else 0)
        try:
            await self._submit(orders)
            self.say("all submitted; waiting for every order to end")
            await self._wait_terminal(orders, bound, outages)
        finally:
            chaos.stop.set()
            await asyncio.gather(*chaos_tasks, outages, sampling, return_exceptions=True)
            if outages.done() and not outages.cancelled() and outages.exception():
                self.violations.append((None, f"an outage could not be injected: "
                                              f"{outages.exception()!r}"))
            self.workers.ensure_running()
        self.injected["stock samples"] = sampler.samples
        self.violations.extend(sampler.violations)
        self.say("chaos stopped; letting the outbox drain")
        await self._settle(orders, chaos.malformed)
        codes = self.workers.stop_all()
        # A worker still starting when the run ends (restarted after a kill, its start-up
        # slowed by the faults) had received nothing yet: stopping it is a crash before
        # any work, which the kills already exercise. Every worker that was running must
        # stop cleanly.
        unready = self.workers.unready_at_stop
        if unready:
            self.note(f"worker(s) {unready} were still starting when the run ended and "
                      f"were stopped as they were (exit codes {codes})")
        if any(code != 0 for index, code in zip(self.workers.processes, codes, strict=True)
               if index not in unready):
            self.violations.append((None, f"a worker did not stop cleanly on SIGTERM: "
                                          f"exit codes {codes}"))
        self.injected.update(self._worker_counts())
        return await self._check(orders, initial, chaos, prefix)

    async def _submit(self, orders: list[PlannedOrder]) -> None:
        current = ""
        # No dispatcher here: the workers' outbox pollers send what this commits.
        service = OrderService(Outbox(self.store, topology=build_topology()),
                               new_order_id=lambda: current)
        pace = 1.0 / self.options.rate
        begun = time.monotonic()
        for number, order in enumerate(orders):
            wait = begun + number * pace - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            current = order.order_id
            request = OrderRequest.model_validate({
                "customerId": f"c-{number % 50}", "currency": "EUR",
                "lines": [{"sku": sku, "quantity": q, "unitPrice": str(PRICES[sku])}
                          for sku, q in order.lines],
                "amount": str(order.amount), "riskFlags": list(order.risk_flags)})
            self.submitted_at[order.order_id] = time.time()
            while True:  # the database may be down: the client tries again, same key
                try:
                    await service.submit(request, idempotency_key=order.order_id)
                    break
                except Exception:
                    if not self.database_down:
                        raise
                    await asyncio.sleep(0.5)
            self.submitted = number + 1

    async def _wait_terminal(self, orders: list[PlannedOrder], bound: float,
                             outages: asyncio.Task[None]) -> None:
        """Until every order's saga has ended and the long faults are over, or `bound`
        seconds (the checks then say which did not)."""
        deadline = time.monotonic() + bound
        last = -1
        while time.monotonic() < deadline:
            try:
                counts = await self.store.count_instances("OrderSaga")
            except Exception as exc:  # down, or SQLite's lock held past its busy timeout
                if not self.database_down:
                    self.note(f"counting the sagas failed for now: {exc!r:.200}")
                await asyncio.sleep(1.0)
                continue
            done = counts.get("Completed", 0) + counts.get("Canceled", 0)
            if done != last:
                self.say(f"  {done}/{len(orders)} ended  {dict(sorted(counts.items()))}")
                last = done
            if done >= len(orders) and outages.done():
                return
            await asyncio.sleep(1.0)

    async def _settle(self, orders: list[PlannedOrder], malformed: dict[str, str],
                      timeout: float = 60.0) -> None:
        """Without faults, give the workers time to finish (:func:`invariants.settled`);
        the checks then say what is still missing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if await invariants.settled(self.store, orders, malformed):
                    return
            except Exception as exc:  # SQLite's lock held past its busy timeout, under load
                self.note(f"reading what is settled failed for now: {exc!r:.200}")
            await asyncio.sleep(1.0)

    def _worker_counts(self) -> Counter[str]:
        """What the workers' chaos did, from this run's logs (they may have been killed,
        so counts come from what they wrote before)."""
        found: Counter[str] = Counter()
        for log in self.workers.logs.glob("worker-*.log"):
            if log.exists():
                for line in log.read_text(errors="replace").splitlines():
                    _, marker, rest = line.partition(" CHAOS ")
                    if marker:
                        found[rest.partition(":")[0]] += 1
        return found

    async def _check(self, orders: list[PlannedOrder], initial: dict[str, int],
                     chaos: Chaos, prefix: str) -> RunReport:
        ended = await invariants.endings(self.store, orders)
        report = RunReport(self.seed, self.options.database, len(orders),
                           injected=self.injected, notes=self.notes)
        dead_lettered = await asyncio.to_thread(invariants.drain_dlqs, self.sqs, prefix)
        self.injected["messages in the DLQs"] = len(dead_lettered)
        checks = [
            await invariants.check_terminal(self.store, orders, ended),
            await invariants.check_money(self.store, self.fakes, orders, ended),
            await invariants.check_stock(self.store, initial, orders, ended),
            await invariants.check_shipments(self.store, self.fakes, orders, ended),
            await invariants.check_handoffs(self.store, orders, chaos.decisions),
            await invariants.check_outbox(self.store),
            await invariants.check_error_store(self.store, chaos.malformed),
            await invariants.check_dlqs(self.store, dead_lettered),
            await invariants.check_history(self.store, orders),
            invariants.check_stock_floor(initial, await invariants.stock_now(
                self.store, initial)),
            await invariants.check_planned_endings(
                self.store, orders, ended, self.submitted_at, self.windows,
                self.contradicted, invariants.SupervisionFaults(
                    rule_off=self.rule_off, aborted=self.aborted,
                    slack=self.options.faults.clock_skew_seconds + 2)),
        ]
        self.injected.update(await invariants.handoff_counts(self.store, orders))
        report.violations = [*self.violations, *(v for found in checks for v in found)]
        for order in orders:
            ending = ended[order.order_id].label
            report.outcomes[(order.path, ending)] += 1
        wanted = list(dict.fromkeys(o for o, _ in report.violations if o))[:5]
        for order_id in wanted:
            report.timelines[order_id] = await self._timeline(order_id)
        return report

    async def _timeline(self, order_id: str) -> str:
        timeline = await build_timeline(self.store, order_id, model=OrderSaga.model,
                                        reviews=self.reviews, sfn=self.stepfunctions)
        if timeline is None:
            return "  (nothing known)"
        lines = [f"  state {timeline.state}, data {json.dumps(timeline.data, default=str)}"]
        lines += [f"  {e.at.isoformat(timespec='milliseconds')} {e.kind:<12} {e.summary}"
                  for e in timeline.entries]
        return "\n".join(lines)


async def run(options: RunOptions) -> RunReport:
    """Run the harness with `options`; the report says what happened."""
    return await Run(options).execute()

