"""The runnable Order-to-Cash app: the saga and every service, in one process or several.

Run everything in one process, on SQLite and the local AWS emulator (moto, started for
you), with the order API on http://127.0.0.1:8000::

    python -m examples.order_to_cash

Or split it, every process on the same database and queues::

    export STEPSAGA_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test
    export STEPSAGA_AWS_ENDPOINT_URL=http://127.0.0.1:5000   # an emulator already running
    python -m examples.order_to_cash --transport sqs --services saga,orders
    python -m examples.order_to_cash --transport sqs --services payment,inventory,shipping

Or, headless (no order API), on the resources a deployment made (``stepsaga local
deploy`` or ``cdk deploy`` prints the ``STEPSAGA_*`` settings)::

    stepsaga worker examples.order_to_cash.app:worker

Every one of them hosts the whole app by default: the saga, the order, payment,
inventory and shipping services, and the review consumer (``bridge.ReviewTaskConsumer``
on the review queue: the ManualReview workflow's tasks reach the ops console); hand-offs
and task answers go out through the bridge's EventBridge and Step Functions sinks, and
spans go over OTLP when ``STEPSAGA_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_ENDPOINT``)
is set. :func:`build_app` is that wiring, shared by both commands and ``stepsaga demo``.

Settings come from the ``STEPSAGA_*`` variables (:class:`core_saga.WorkerSettings`);
``STEPSAGA_EVENT_BUS`` names the hand-offs' bus. With ``python -m`` the database
defaults to ``sqlite+aiosqlite:///order_to_cash.db``. ``--transport``:
``emulator`` (default: SQS on a local moto server, started unless
``STEPSAGA_AWS_ENDPOINT_URL`` names one), ``sqs`` (the configured endpoint, or AWS) or
``memory`` (in-process queues; all services in one process).

In code, :func:`build_worker` gives a :class:`core_saga.Worker` hosting what you ask
for, and :func:`host_services` hosts the same on a test harness.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, Protocol

from bridge import (
    AwsClients,
    HandOffConfig,
    ReviewStore,
    ReviewTaskConsumer,
    TaskHeartbeats,
    attach_bridge,
)
from core_saga import (
    Clock,
    Consumer,
    Saga,
    Topology,
    Worker,
    WorkerSettings,
    run_async,
)
from core_saga.extension import ConsumerHandler, SagaHandler
from core_saga.logs import configure_logging
from core_saga.persistence import SagaStore, store_from_url
from core_saga.telemetry import configure
from core_saga.transports import InMemoryTransport, SqsTransport, Transport

from . import inventory, orders, payment, shipping
from .orders.api import api_keys_from_env
from .queues import (
    ALL_QUEUES,
    INVENTORY_QUEUE,
    ORDER_SAGA_QUEUE,
    ORDERS_QUEUE,
    PAYMENT_QUEUE,
    REVIEW_QUEUE,
    SHIPPING_QUEUE,
)
from .saga import OrderSaga
from .settings import LOCAL_BUS, LOCAL_REPLY_TO, OrderSagaSettings

log = logging.getLogger("examples.order_to_cash")

SERVICES = ("saga", "orders", "payment", "inventory", "shipping")
"""The app's message services: what :func:`build_worker` hosts by default."""
REVIEWS = "reviews"
"""The review consumer (``bridge.ReviewTaskConsumer`` on the review queue): keeps the
ManualReview workflow's tasks for the ops console."""
APP_SERVICES = (*SERVICES, REVIEWS)
"""What a process can host (``--services`` picks among them): the whole app, what the
command line and :func:`worker` host by default."""

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///order_to_cash.db"
DEMO_STOCK = {"BOOK-1": 100, "MUG-1": 100, "LAMP-1": 20}


class Host(Protocol):
    """What can host sagas and consumers: a :class:`core_saga.Worker` or a
    :class:`core_saga.testing.SagaTestHarness`."""

    def add_saga(self, saga: Saga[Any], queue: str) -> object: ...

    def add_consumer(self, consumer: Consumer[Any], queue: str) -> object: ...


@dataclass(frozen=True)
class Endpoint:
    """One handler of the app on its queue."""

    service: str
    queue: str
    handler: Saga[Any] | Consumer[Any]


def endpoints(*, saga_settings: OrderSagaSettings | None = None,
              gateway: payment.PaymentGateway | None = None,
              carrier: shipping.Carrier | None = None,
              clock: Clock | None = None,
              heartbeats: TaskHeartbeats | None = None) -> list[Endpoint]:
    """Every handler of the app and its queue. Fakes stand in for the gateway and the
    carrier unless real ones are given; `heartbeats` keep the SlowShipping workflow's
    tasks alive during carrier calls."""
    gateway = gateway or payment.FakePaymentGateway()
    carrier = carrier or shipping.FakeCarrier(clock=clock)
    return [
        Endpoint("saga", ORDER_SAGA_QUEUE, OrderSaga(saga_settings)),
        Endpoint("orders", ORDERS_QUEUE, orders.OrderCompletedConsumer()),
        Endpoint("orders", ORDERS_QUEUE, orders.OrderCanceledConsumer()),
        Endpoint("payment", PAYMENT_QUEUE, payment.ChargePaymentConsumer(gateway)),
        Endpoint("payment", PAYMENT_QUEUE, payment.RefundPaymentConsumer(gateway)),
        Endpoint("inventory", INVENTORY_QUEUE, inventory.ReserveInventoryConsumer()),
        Endpoint("inventory", INVENTORY_QUEUE, inventory.ReleaseInventoryConsumer()),
        Endpoint("shipping", SHIPPING_QUEUE,
                 shipping.CreateShipmentConsumer(carrier, heartbeats)),
        Endpoint("shipping", SHIPPING_QUEUE, shipping.CancelShipmentConsumer(carrier)),
    ]


def check_services(services: Sequence[str]) -> tuple[str, ...]:
    """`services` validated; ValueError naming the unknown ones."""
    unknown = sorted(set(services) - set(APP_SERVICES))
    if unknown:
        raise ValueError(f"unknown service(s) {', '.join(unknown)}: choose from "
                         f"{', '.join(APP_SERVICES)}")
    if not services:
        raise ValueError("no service to host: choose from " + ", ".join(APP_SERVICES))
    return tuple(dict.fromkeys(services))


def build_topology() -> Topology:
    """The publish routes of the whole app. Every process builds all of them, whatever
    it hosts, so an event published anywhere reaches every subscribed queue."""
    topology = Topology()
    for endpoint in endpoints():
        handler = (SagaHandler(endpoint.handler) if isinstance(endpoint.handler, Saga)
                   else ConsumerHandler(endpoint.handler))
        topology.subscribe_all(handler.subscriptions(), endpoint.queue)
    return topology


def host_services(host: Host, *, services: Sequence[str] = SERVICES,
                  saga_settings: OrderSagaSettings | None = None,
                  gateway: payment.PaymentGateway | None = None,
                  carrier: shipping.Carrier | None = None, clock: Clock | None = None,
                  heartbeats: TaskHeartbeats | None = None,
                  reviews: ReviewStore | None = None) -> None:
    """Host `services` (default: the message services) on `host`; ``reviews`` among
    them needs the review store (`reviews`) its consumer writes to."""
    wanted = set(check_services(services))
    for endpoint in endpoints(saga_settings=saga_settings, gateway=gateway, carrier=carrier,
                              clock=clock, heartbeats=heartbeats):
        if endpoint.service not in wanted:
            continue
        if isinstance(endpoint.handler, Saga):
            host.add_saga(endpoint.handler, queue=endpoint.queue)
        else:
            host.add_consumer(endpoint.handler, queue=endpoint.queue)
    if REVIEWS in wanted:
        if reviews is None:
            raise ValueError("hosting 'reviews' needs the review store its consumer writes "
                             "to: reviews=ReviewStore.open(store)")
        host.add_consumer(ReviewTaskConsumer(reviews), queue=REVIEW_QUEUE)


def build_worker(settings: WorkerSettings, store: SagaStore, transport: Transport, *,
                 services: Sequence[str] = SERVICES,
                 saga_settings: OrderSagaSettings | None = None,
                 gateway: payment.PaymentGateway | None = None,
                 carrier: shipping.Carrier | None = None,
                 clock: Clock | None = None,
                 heartbeats: TaskHeartbeats | None = None,
                 reviews: ReviewStore | None = None) -> Worker:
    """A worker hosting `services` (default: the message services) with the app's full
    topology; nothing else is attached (:func:`build_app` wires the whole app)."""
    # No clock given: the worker's own (the database's, `database_clock`, on by default),
    # so that timers and leases agree across hosts whose clocks differ; the services
    # read the same one.
    built = Worker(settings, store=store, transport=transport, clock=clock,
                   topology=build_topology())
    host_services(built, services=services, saga_settings=saga_settings, gateway=gateway,
                  carrier=carrier, clock=built.clock, heartbeats=heartbeats, reviews=reviews)
    return built


async def build_app(settings: WorkerSettings, store: SagaStore, transport: Transport, *,
                    services: Sequence[str] = APP_SERVICES, bus: str = LOCAL_BUS,
                    saga_settings: OrderSagaSettings | None = None,
                    stock: dict[str, int] | None = None,
                    gateway: payment.PaymentGateway | None = None,
                    carrier: shipping.Carrier | None = None,
                    clock: Clock | None = None) -> Worker:
    """The whole app (`services` of it: default all) on a worker, wired as every entry
    point runs it (``python -m examples.order_to_cash``, ``stepsaga worker
    examples.order_to_cash.app:worker``, ``stepsaga demo``):

    - the tables it needs, made if missing: the engine's, every hosted service's, and
      ``review_tasks`` with the review consumer (``stepsaga migrate`` makes the engine's
      and the bridge's the same way);
    - with the inventory service, the `stock` levels (``{}``: demo stock on an empty
      table; None: left as they are);
    - the saga's hand-offs to `bus`, the workflows' replies to the saga's queue (its URL
      asked of the SQS transport; the in-process address on in-memory queues), from
      `saga_settings` (default :class:`OrderSagaSettings`) otherwise;
    - on SQS, the bridge's EventBridge and Step Functions sinks and the shipping
      service's task heartbeats, on ``settings.aws()``; the worker closes their clients
      when it stops (the store and the transport stay the caller's).
    """
    wanted = check_services(services)
    await create_tables(store)
    reviews = None
    if REVIEWS in wanted:
        reviews = ReviewStore.open(store)
        await reviews.create_table()
    if "inventory" in wanted and stock is not None:
        await _seed_stock(store, stock)
    on_sqs = isinstance(transport, SqsTransport)
    reply_to = (await transport.queue_url(ORDER_SAGA_QUEUE)
                if isinstance(transport, SqsTransport) else LOCAL_REPLY_TO)
    saga_settings = dataclasses.replace(saga_settings or OrderSagaSettings(),
                                        supervision=HandOffConfig(bus=bus, reply_to=reply_to))
    if not on_sqs:  # in-process queues: no AWS to hand off to or answer
        return build_worker(settings, store, transport, services=wanted,
                            saga_settings=saga_settings, gateway=gateway, carrier=carrier,
                            clock=clock, reviews=reviews)
    # Hand-offs (EventBridge) and task-token answers (Step Functions) leave through the
    # bridge's sinks; the shipping service keeps SlowShipping's tasks alive meanwhile.
    clients = AwsClients(settings.aws())
    try:
        heartbeats = TaskHeartbeats(await clients.client("stepfunctions"))
        built = build_worker(settings, store, transport, services=wanted,
                             saga_settings=saga_settings, gateway=gateway, carrier=carrier,
                             clock=clock, heartbeats=heartbeats, reviews=reviews)
        sinks = await attach_bridge(built, settings.aws())
    except BaseException:
        await clients.close()
        raise
    built.on_stop(sinks.close)
    built.on_stop(clients.close)
    return built


async def worker(settings: WorkerSettings) -> Worker:
    """The reference app's worker factory: ``stepsaga worker
    examples.order_to_cash.app:worker`` runs the whole app (see :func:`build_app`),
    without the order API, on the database, queues and bus the ``STEPSAGA_*`` settings
    name (a deployment's outputs: ``STEPSAGA_QUEUE_PREFIX``, ``STEPSAGA_EVENT_BUS``,
    ``STEPSAGA_AWS_REGION``, and on an emulator ``STEPSAGA_AWS_ENDPOINT_URL``).
    ``stepsaga worker`` configures logging and tracing from the same settings. The
    worker closes its store and transport when it stops."""
    store = open_store(settings)
    try:
        transport = await SqsTransport.connect(settings.sqs())
    except BaseException:
        await store.close()
        raise
    try:
        built = await build_app(settings, store, transport, bus=event_bus(), stock={})
    except BaseException:
        await transport.close()
        await store.close()
        raise
    built.on_stop(transport.close)
    built.on_stop(store.close)
    return built


def event_bus() -> str:
    """The hand-offs' bus: ``STEPSAGA_EVENT_BUS`` (a deployment's ``EventBusName``
    output), else ``stepsaga``."""
    return os.environ.get("STEPSAGA_EVENT_BUS") or LOCAL_BUS


def order_service(worker: Worker) -> orders.OrderService:
    """The order service on `worker`'s store, publishing through its outbox
    (:meth:`core_saga.Worker.outbox`)."""
    return orders.OrderService(worker.outbox())


async def create_tables(store: SagaStore) -> None:
    """Create the engine's tables and every service's tables in `store` if missing."""
    await store.create_schema()
    for module in (orders, payment, inventory, shipping):
        await module.create_tables(store)


def open_store(settings: WorkerSettings) -> SagaStore:
    """The store `settings.database_url` names: AsyncpgStore for ``postgresql://``,
    SqlStore for ``sqlite+aiosqlite://`` (ValueError for a database the services cannot
    use: :func:`check_database`)."""
    check_database(settings.database_url)
    if settings.database_schema is None:
        return store_from_url(settings.database_url)
    return store_from_url(settings.database_url, schema=settings.database_schema)


def check_database(url: str) -> str:
    """`url` when the services can keep their tables there; ValueError for ``memory://``,
    whose MemoryStore holds only the engine's own data and runs no SQL."""
    if url.startswith("memory://"):
        raise ValueError(
            f"database {url!r}: the Order-to-Cash services keep their rows in SQL tables; "
            f"use a SQLite file ({DEFAULT_DATABASE_URL}, the default) or PostgreSQL "
            "(postgresql+asyncpg://USER@HOST:PORT/DATABASE)")
    return url


# -- the command line -----------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of :func:`main`."""
    parser = argparse.ArgumentParser(prog="python -m examples.order_to_cash",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--services", default=",".join(APP_SERVICES),
                        help=f"comma-separated, from {','.join(APP_SERVICES)} (default: all)")
    parser.add_argument("--transport", choices=("emulator", "sqs", "memory"),
                        default="emulator", help="emulator (default), sqs or memory")
    parser.add_argument("--http-host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=8000,
                        help="port of the order API when 'orders' is hosted; 0: no API")
    parser.add_argument("--stock", action="append", default=[], metavar="SKU=QTY",
                        help="set a stock level at start (repeatable); with the inventory "
                             "service and no --stock, demo stock is set on an empty table")
    parser.add_argument("--shipping-deadline", type=float, default=3600.0,
                        metavar="SECONDS", help="the saga's shipping deadline (default 3600)")
    parser.add_argument("--review-threshold", type=Decimal, default=Decimal("1000.00"))
    parser.add_argument("--bus", default=event_bus(),
                        help="the EventBridge bus of the hand-offs (default: "
                             "$STEPSAGA_EVENT_BUS or 'stepsaga'; prefixed on the emulator)")
    parser.add_argument("--log-level", default="INFO")
    options = parser.parse_args(argv)
    try:
        options.services = check_services(
            [s.strip() for s in options.services.split(",") if s.strip()])
        options.stock = dict(_stock_level(item) for item in options.stock)
        options.api_keys = api_keys_from_env()
    except ValueError as exc:
        parser.error(str(exc))
    if options.transport == "memory" and set(options.services) != set(APP_SERVICES):
        parser.error("--transport memory keeps queues inside one process: host every "
                     "service (leave out --services)")
    return options


def _stock_level(item: str) -> tuple[str, int]:
    sku, sep, quantity = item.partition("=")
    if not sep or not sku or not quantity.isdigit():
        raise ValueError(f"--stock {item!r}: write SKU=QUANTITY, e.g. BOOK-1=25")
    return sku, int(quantity)


def worker_settings() -> WorkerSettings:
    """WorkerSettings from the environment, with the app's default database."""
    if "STEPSAGA_DATABASE_URL" in os.environ:
        return WorkerSettings()
    return WorkerSettings(database_url=DEFAULT_DATABASE_URL)


@contextlib.contextmanager
def _sqs_endpoint(options: argparse.Namespace, settings: WorkerSettings
                  ) -> Iterator[WorkerSettings]:
    """Settings pointing at SQS; starts the local emulator (and makes the queues) when
    asked for one and none is configured."""
    if options.transport != "emulator" or settings.aws_endpoint_url:
        yield settings
        return
    from core_saga.emulator import start_emulator

    with start_emulator() as emulator:
        os.environ.update(emulator.env())  # fake credentials: nothing reaches AWS
        provision_local(emulator.boto3_client, settings.queue_prefix, bus=options.bus)
        log.info("local AWS emulator at %s (STEPSAGA_AWS_ENDPOINT_URL for other processes)",
                 emulator.endpoint_url)
        yield settings.model_copy(update={"aws_endpoint_url": emulator.endpoint_url})


def provision_local(client: Callable[[str], Any], prefix: str = "", *, bus: str = LOCAL_BUS,
                    manual_review: Any = None, slow_shipping: Any = None,
                    max_receive_count: int = 10, visibility_timeout: int = 30) -> Any:
    """Make the app's queues (each with its dead-letter queue and redrive policy) and the
    supervision resources (bus, rules, claim table, review queue, both workflows, the
    status rule to the saga's queue) on an emulator, as ``infra/`` deploys them on AWS.
    `client` gives a boto3 client per service; `max_receive_count` is the redrive
    policy's (a worker refuses less than its ``max_deliveries`` +
    ``dead_letter_margin``), `visibility_timeout` every queue's. The result is the
    :class:`supervisor_workflows.local.SupervisionResources`."""
    from core_saga.emulator import create_sqs_queue
    from supervisor_workflows.local import provision

    sqs = client("sqs")
    urls = {q: create_sqs_queue(sqs, prefix + q, max_receive_count=max_receive_count,
                                visibility_timeout=visibility_timeout).url
            for q in ALL_QUEUES if q != REVIEW_QUEUE}
    return provision(client, prefix=prefix, bus_name=bus,
                     shipping_queue_url=urls[SHIPPING_QUEUE], manual_review=manual_review,
                     slow_shipping=slow_shipping, max_receive_count=max_receive_count,
                     visibility_timeout=visibility_timeout,
                     status_queue_url=urls[ORDER_SAGA_QUEUE])


class EmbeddedServer:
    """uvicorn serving an ASGI app inside the running event loop, leaving signals to the
    caller (the worker's or the demo's handlers stop it through :meth:`stop`)."""

    def __init__(self, app: Any, **config: Any) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        self.server = Server(uvicorn.Config(app, **config))

    async def serve(self, sockets: list[Any] | None = None) -> None:
        """Serve until :meth:`stop` (on `sockets` when given, else ``host:port``)."""
        await self.server.serve(sockets=sockets)

    @property
    def started(self) -> bool:
        return bool(self.server.started)

    def stop(self) -> None:
        self.server.should_exit = True


async def run(options: argparse.Namespace) -> None:
    """Run what `options` asks for until SIGINT/SIGTERM."""
    settings = worker_settings()
    with _sqs_endpoint(options, settings) as settings:
        async with contextlib.AsyncExitStack() as stack:
            store = open_store(settings)
            stack.push_async_callback(store.close)
            transport: Transport
            if options.transport == "memory":
                transport = InMemoryTransport()
            else:
                transport = await SqsTransport.connect(settings.sqs())
            stack.push_async_callback(transport.close)
            bus = options.bus
            if options.transport == "emulator":
                bus = settings.queue_prefix + bus  # provision_local's names
            app = await build_app(
                settings, store, transport, services=options.services, bus=bus,
                stock=options.stock, saga_settings=OrderSagaSettings(
                    shipping_deadline=timedelta(seconds=options.shipping_deadline),
                    review_threshold=options.review_threshold))
            api = None
            if "orders" in options.services and options.http_port:
                api = EmbeddedServer(orders.create_app(order_service(app),
                                                       api_keys=options.api_keys),
                                     host=options.http_host, port=options.http_port,
                                     log_level=options.log_level.lower())
            stop = _stopper(app, api)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop)
            tasks = [app.run(install_signal_handlers=False)]
            if api is not None:
                tasks.append(api.serve())
            await asyncio.gather(*tasks)


def _stopper(worker: Worker, api: EmbeddedServer | None) -> Callable[[], None]:
    def stop() -> None:
        log.info("stopping")
        worker.request_stop()
        if api is not None:
            api.stop()
    return stop


async def _seed_stock(store: SagaStore, levels: dict[str, int]) -> None:
    if levels:
        await inventory.set_stock_levels(store, levels)
        return
    current = await inventory.stock_levels(store, DEMO_STOCK)
    if all(level is None for level in current.values()):
        await inventory.set_stock_levels(store, DEMO_STOCK)
        log.info("demo stock set: %s", DEMO_STOCK)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: ``python -m examples.order_to_cash [--services ...] [--transport ...]``."""
    options = parse_args(argv)
    try:
        settings = worker_settings()
        check_database(settings.database_url)
        configure_logging(options.log_level)  # STEPSAGA_LOG_FORMAT=json for JSON lines
        # spans over OTLP to STEPSAGA_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_ENDPOINT), as
        # `stepsaga worker` does
        telemetry = configure(service_name=os.environ.get("OTEL_SERVICE_NAME")
                              or "order-to-cash", otlp_endpoint=settings.otlp_endpoint)
    except ValueError as exc:  # before anything starts
        raise SystemExit(f"python -m examples.order_to_cash: {exc}") from None
    try:
        run_async(run(options), event_loop=settings.event_loop)  # uvloop when installed
    finally:
        telemetry.flush()
