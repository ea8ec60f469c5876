"""One worker process of a reliability run: the whole Order-to-Cash app (saga and
services), the review-task consumer and the bridge's sinks, on the run's database and
emulator, with the chaos transport and the durable fakes. The harness starts several,
SIGKILLs them at random and starts them again; SIGTERM stops one cleanly.

    python -m tests.reliability.worker '<config as JSON>'
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge import (
    AwsClients,
    HandOffConfig,
    ReviewStore,
    ReviewTaskConsumer,
    TaskHeartbeats,
    attach_bridge,
)
from core_saga import WorkerSettings
from core_saga.persistence import SagaStore, store_from_url
from core_saga.transports import SqsTransport
from examples.order_to_cash import OrderSagaSettings, build_worker
from examples.order_to_cash.queues import ORDER_SAGA_QUEUE, REVIEW_QUEUE

from .chaos_transport import ChaosTransport
from .fakes import DurableCarrier, DurableGateway, fakes_engine
from .plan import MAX_MESSAGE_BYTES, TIMINGS, Timings

APPLICATION_NAME = "stepsaga-reliability-worker"
"""PostgreSQL ``application_name`` of the workers' connections: the harness cuts these."""


@dataclass(frozen=True)
class WorkerConfig:
    """What the harness tells a worker process (JSON on its command line)."""

    index: int
    seed: int
    database_url: str
    schema: str | None
    fakes_url: str
    endpoint_url: str
    region: str
    prefix: str
    bus: str
    gateway_transient: float
    duplicate: float
    delay: float
    refund_lost_answer: bool = False
    """Every order's first refund call loses its answer after the gateway refunded."""
    concurrent_copies: int = 0
    """Copies (new message ids) of PaymentCharged sent at once for ``concurrent`` orders."""
    clock_skew_seconds: float = 0.0
    """How far this process's wall clock runs ahead (the engine's clock module only)."""

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> WorkerConfig:
        return cls(**json.loads(text))


def worker_settings(config: WorkerConfig, timings: Timings) -> WorkerSettings:
    """The shipped defaults (deliveries, redelivery backoff, concurrency, the database's
    timeouts, the outage backoff), except what only sets the pace of a short run: the
    long-poll wait and the outbox poll (a shorter idle wait, not a different retry
    budget), the delete and send lingers (latency per hop), the visibility timeout (the
    queues' own, provisioned short so that a killed worker's messages come back in
    seconds), the shutdown grace, and the size limit the oversize messages are made for."""
    return WorkerSettings(
        database_url=config.database_url, database_schema=config.schema,
        aws_endpoint_url=config.endpoint_url, aws_region=config.region,
        queue_prefix=config.prefix, wait_time_seconds=1,
        visibility_timeout=timings.visibility_seconds,
        outbox_poll_seconds=0.2, delete_linger_seconds=0.05,
        send_linger_seconds=0.02, shutdown_grace_seconds=10,
        max_message_bytes=MAX_MESSAGE_BYTES)


def skew_clock(seconds: float) -> None:
    """Make this process's wall clock, as the engine reads it (``core_saga._clock``),
    run `seconds` ahead: a host whose clock is off. The database's clock (PostgreSQL)
    is read from the server and carried on the monotonic clock, so it stays right."""
    if not seconds:
        return
    from datetime import datetime, timedelta

    from core_saga import _clock

    class _Skewed(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) + timedelta(seconds=seconds)

    setattr(_clock, "datetime", _Skewed)  # noqa: B010 (the module's own name)


def open_store(config: WorkerConfig, application_name: str = APPLICATION_NAME) -> SagaStore:
    if config.database_url.startswith("postgresql"):
        return store_from_url(config.database_url, schema=config.schema, pool_size=8,
                              server_settings={"application_name": application_name})
    return store_from_url(config.database_url)


async def run(config: WorkerConfig) -> None:
    timings = TIMINGS
    settings = worker_settings(config, timings)
    skew_clock(config.clock_skew_seconds)
    rng = random.Random(config.seed * 1000 + config.index * 17 + os.getpid())
    store = open_store(config)
    reviews = ReviewStore.open(store)
    fakes = fakes_engine(config.fakes_url, config.schema)
    inner = await SqsTransport.connect(settings.sqs())
    transport = ChaosTransport(inner, rng, duplicate=config.duplicate, delay=config.delay,
                               concurrent_copies=config.concurrent_copies)
    reply_to = await inner.queue_url(ORDER_SAGA_QUEUE)
    saga_settings = OrderSagaSettings(
        review_threshold=None, shipping_deadline=timings.shipping_deadline,
        shipping_retry_initial=timings.shipping_retry_initial,
        shipping_retry_max=timings.shipping_retry_max,
        shipping_retry_budget=timings.shipping_retry_budget,
        # The started deadline short (a speed setting of a short run: Timings); the
        # re-publishes the shipped default.
        supervision=HandOffConfig(bus=config.bus, reply_to=reply_to,
                                  started_deadline=timings.supervision_started_deadline))
    aws = settings.aws()
    clients = AwsClients(aws)
    heartbeats = TaskHeartbeats(await clients.client("stepfunctions"))
    worker = build_worker(settings, store, transport,
                          saga_settings=saga_settings,
                          gateway=DurableGateway(fakes, rng,
                                                 transient_rate=config.gateway_transient,
                                                 refund_lost_answer=config.refund_lost_answer),
                          carrier=DurableCarrier(fakes), heartbeats=heartbeats)
    worker.add_consumer(ReviewTaskConsumer(reviews), queue=REVIEW_QUEUE)
    sinks = await attach_bridge(worker, aws)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.request_stop)
    print(f"worker {config.index} ready (pid {os.getpid()})", flush=True)
    orphan_watch = asyncio.create_task(_stop_when_orphaned(worker.request_stop))
    try:
        await worker.run(install_signal_handlers=False)
    finally:
        orphan_watch.cancel()
        await sinks.close()
        await clients.close()
        await transport.close()
        await reviews.close()
        await fakes.dispose()
        await store.close()


ORPHAN_GRACE_SECONDS = 5.0


async def _stop_when_orphaned(stop: Callable[[], None]) -> None:
    """Stop when the harness is gone (killed itself): a worker never outlives its run.
    The emulator died with the harness, so a graceful stop may never drain; exit anyway
    after a grace period (what is uncommitted rolls back, as after a SIGKILL)."""
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    stop()
    await asyncio.sleep(ORPHAN_GRACE_SECONDS)
    os._exit(3)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    config = WorkerConfig.from_json(args[0])
    logging.basicConfig(level=logging.WARNING,
                        format=f"%(asctime)s w{config.index} %(levelname)s %(name)s %(message)s")
    asyncio.run(run(config))


if __name__ == "__main__":
    main()

