"""The worker's metrics as an operator's Prometheus reads them (``/metrics`` on the
health port), after a few orders over real SQS on the emulator and a few poison
messages: every message sent was handled, every poison message dead-lettered."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core_saga.emulator import Emulator
from core_saga.emulator.pytest_plugin import AwsScope
from core_saga.persistence import SagaStore
from core_saga.telemetry import configure
from core_saga.transports import TransportMessage

from .stack import supervised_stack

POISON = [b"not json", b'{"messageType": "urn:message:nope"}', b"[1, 2]"]


def total(text: str, name: str, prefix: str, **labels: str) -> float:
    """The sum of `name`'s samples on queues under `prefix` with `labels`."""
    found = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name != name:
                continue
            if not sample.labels.get("messaging_destination_name", "").startswith(prefix):
                continue
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                found += sample.value
    return found


@pytest.mark.emulator
@pytest.mark.timeout(180)
async def test_handled_equals_sent_and_poison_is_dead_lettered(
        emulator: Emulator, aws: AwsScope, sqlite_store: SagaStore,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert configure(service_name="order-to-cash-metrics").metrics
    async with supervised_stack(emulator, aws, sqlite_store, monkeypatch, health_port=0,
                                metrics_interval_seconds=0.2) as stack:
        for n in range(3):
            await stack.submit(f"m-{n}", ("BOOK-1", 1, "20.00"))
        await stack.transport.send_batch("payment", [
            TransportMessage(body, f"poison-{i}", "raw") for i, body in enumerate(POISON)])
        for n in range(3):
            assert await stack.outcome(f"m-{n}") == "Completed"
        assert stack.worker.health is not None
        url = f"http://127.0.0.1:{stack.worker.health.port}/metrics"
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + 60
            while True:
                text = (await client.get(url)).text
                sent = total(text, "messaging_client_sent_messages_total", aws.prefix,
                             stepsaga_outbox_kind="send")
                handled = total(text, "stepsaga_messages_handled_total", aws.prefix,
                                stepsaga_outcome="ack")
                dead = total(text, "stepsaga_messages_dead_lettered_total", aws.prefix)
                sagas = sum(s.value for f in text_string_to_metric_families(text)
                            for s in f.samples if s.name == "stepsaga_sagas"
                            and s.labels.get("stepsaga_state") == "Completed")
                if (sent and handled == sent and dead == len(POISON) and sagas == 3) \
                        or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
    # every order: OrderSubmitted, ChargePayment, PaymentCharged, ReserveInventory,
    # InventoryReserved, CreateShipment, ShipmentCreated, OrderCompleted (to the order
    # service) — eight messages, each sent once and handled once
    assert sent == 3 * 8
    assert handled == sent
    assert dead == len(POISON)
    assert total(text, "stepsaga_messages_dead_lettered_total", aws.prefix + "payment") == 3
    assert total(text, "messaging_client_consumed_messages_total", aws.prefix) == \
        handled + dead
    assert total(text, "messaging_process_duration_seconds_count", aws.prefix) == \
        handled + dead
    assert sagas == 3
    aws_calls = sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                    if s.name == "stepsaga_aws_calls_total"
                    and s.labels.get("rpc_method") == "SendMessageBatch")
    assert aws_calls >= 1
