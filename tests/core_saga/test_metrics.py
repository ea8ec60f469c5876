"""The worker's metrics, read as an operator's Prometheus would, from /metrics."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from core_saga import ConsumeContext, Consumer, Envelope, Message, Worker, WorkerSettings
from core_saga.extension import new_id
from core_saga.persistence import SqlStore
from core_saga.telemetry import configure
from core_saga.transports import InMemoryTransport, TransportMessage


class Counted(Message):
    message_namespace = "t.metrics"
    n: int


class Fine(Consumer[Counted]):
    async def consume(self, ctx: ConsumeContext[Counted]) -> None:
        ctx.send("metrics-onward", Counted(n=ctx.message.n))


def samples(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in labels.items()):
                total += sample.value
    return total


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not reached in time"
        await asyncio.sleep(0.1)


async def test_counters_and_gauges_on_the_health_port(sqlite_store: SqlStore) -> None:
    assert configure(service_name="metrics-test").metrics
    queue = f"metrics-{uuid.uuid4().hex[:6]}"
    transport = InMemoryTransport()
    worker = Worker(WorkerSettings(wait_time_seconds=0, health_port=0,
                                   metrics_interval_seconds=0.2),
                    store=sqlite_store, transport=transport)
    worker.add_consumer(Fine(), queue=queue)
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    try:
        await until(lambda: asyncio.sleep(0, worker._started.is_set()))
        assert worker.health is not None
        good = [TransportMessage(Envelope(message=Counted(n=n), message_id=new_id())
                                 .encode(), str(n), "t") for n in range(5)]
        poison = [TransportMessage(b"not json", "p1", "raw"),
                  TransportMessage(b'{"messageType": "urn:message:nope"}', "p2", "raw")]
        await transport.send_batch(queue, good + poison)
        url = f"http://127.0.0.1:{worker.health.port}/metrics"
        async with httpx.AsyncClient() as client:
            async def settled() -> bool:
                text = (await client.get(url)).text
                return (samples(text, "stepsaga_messages_handled_total",
                                messaging_destination_name=queue, stepsaga_outcome="ack") == 5
                        and samples(text, "stepsaga_messages_dead_lettered_total",
                                    messaging_destination_name=queue) == 2
                        # sent after the commit, batched: may trail the handling
                        and samples(text, "messaging_client_sent_messages_total",
                                    messaging_destination_name="metrics-onward") == 5)
            await until(settled)
            response = await client.get(url)
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        assert samples(text, "messaging_process_duration_seconds_count",
                       messaging_destination_name=queue) == 7
        assert samples(text, "messaging_client_sent_messages_total",
                       messaging_destination_name="metrics-onward") == 5
        assert samples(text, "messaging_client_consumed_messages_total",
                       messaging_destination_name=queue) == 7
        assert samples(text, "stepsaga_database_up") >= 1
        assert "stepsaga_outbox_backlog" in text
    finally:
        worker.request_stop()
        await task
