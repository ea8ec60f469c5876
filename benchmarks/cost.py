"""What an order costs in AWS requests, counted on the local emulator, and the price of a
million orders beside the all-Step-Functions design of the reference article.

It runs the full Order-to-Cash hybrid (saga and services over SQS, hand-offs through
EventBridge to the real ManualReview workflow, task-token callbacks) for `--orders`
orders of which `--supervised` (a share) need manual review, approved by a reviewer
that reads the review queue. Then it counts the billable requests:

- SQS requests made by the workers (the transport counts each call), by the reviewer
  (receive + delete), and by the workflows (each ``sqs:sendMessage`` task state entered);
- EventBridge custom events put (the bridge's sink counts accepted entries);
- Step Functions Standard state transitions (``*StateEntered`` events in every
  execution's history, as AWS bills them);
- DynamoDB writes (one claim per execution).

The order service's own submissions are counted with the workers (its outbox sends).
Retries, the long polls of idle workers and the purge are included as they happen.

Prices (us-east-1, AWS list prices, checked 2026-11; the free tiers are left out):

- SQS standard: $0.40 per million requests (https://aws.amazon.com/sqs/pricing/)
- EventBridge custom events: $1.00 per million (https://aws.amazon.com/eventbridge/pricing/)
- Step Functions Standard: $0.025 per 1,000 state transitions
  (https://aws.amazon.com/step-functions/pricing/)
- DynamoDB on-demand writes: $0.625 per million write request units
  (https://aws.amazon.com/dynamodb/pricing/on-demand/)

The comparison: the article's all-Step-Functions design runs every order as a Standard
execution of about 20 state transitions: $0.025 × 20 / 1,000 = $0.0005 an order, $500
per million orders (its Lambda and SQS requests would add to that; they are left out, in
its favour).

    .venv/bin/python benchmarks/cost.py [--orders 100] [--supervised 0.05] [--repeats 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import describe, run_main

from bridge import HandOffConfig, attach_bridge
from bridge.contracts import ReviewTask
from core_saga import (
    WorkerSettings,
)
from core_saga.emulator import Emulator, start_emulator
from core_saga.extension import decode_envelope
from core_saga.persistence import SqlStore
from core_saga.transports import SqsTransport
from examples.order_to_cash import (
    OrderSagaSettings,
    build_worker,
    create_tables,
    order_service,
)
from examples.order_to_cash.app import provision_local
from examples.order_to_cash.inventory import set_stock_levels
from examples.order_to_cash.orders import OrderRequest
from examples.order_to_cash.payment import FakePaymentGateway
from examples.order_to_cash.queues import ORDER_SAGA_QUEUE
from examples.order_to_cash.shipping import FakeCarrier
from supervisor_workflows import ManualReviewTimings

PRICE_SQS_REQUEST = 0.40 / 1e6
PRICE_EVENTBRIDGE_EVENT = 1.00 / 1e6
PRICE_SFN_TRANSITION = 0.025 / 1e3
PRICE_DYNAMODB_WRITE = 0.625 / 1e6
ALL_SFN_TRANSITIONS_PER_ORDER = 20


@dataclass
class Counts:
    orders: int
    supervised: int
    sqs_workers: int
    sqs_reviewer: int
    sqs_workflows: int
    eventbridge_events: int
    sfn_transitions: int
    dynamodb_writes: int
    seconds: float
    sqs_by_operation: Counter[str]

    @property
    def sqs(self) -> int:
        return self.sqs_workers + self.sqs_reviewer + self.sqs_workflows

    def dollars(self) -> dict[str, float]:
        return {"SQS": self.sqs * PRICE_SQS_REQUEST,
                "EventBridge": self.eventbridge_events * PRICE_EVENTBRIDGE_EVENT,
                "Step Functions": self.sfn_transitions * PRICE_SFN_TRANSITION,
                "DynamoDB": self.dynamodb_writes * PRICE_DYNAMODB_WRITE}


def order(i: int, review: bool) -> OrderRequest:
    return OrderRequest.model_validate({
        "customerId": f"c-{i}", "currency": "EUR", "amount": "25.00",
        "lines": [{"sku": "BOOK-1", "quantity": 2, "unitPrice": "12.50"}],
        "riskFlags": ["new_account"] if review else []})


async def reviewer(emulator: Emulator, queue_url: str, stop: asyncio.Event,
                   calls: Counter[str]) -> None:
    """Approves every review task (as a person in the console would)."""
    sqs, sfn = emulator.boto3_client("sqs"), emulator.boto3_client("stepfunctions")
    while not stop.is_set():
        calls["ReceiveMessage"] += 1
        got = await asyncio.to_thread(sqs.receive_message, QueueUrl=queue_url,
                                      MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in got.get("Messages", []):
            task = decode_envelope(message["Body"]).message
            assert isinstance(task, ReviewTask)
            sfn.send_task_success(taskToken=task.task_token,
                                  output=json.dumps({"decision": "approved"}))
            calls["DeleteMessage"] += 1
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def count_executions(emulator: Emulator, arns: list[str]) -> tuple[int, int, int]:
    """(state transitions, sqs:sendMessage tasks, executions) over the state machines."""
    sfn = emulator.boto3_client("stepfunctions")
    transitions = sqs_tasks = executions = 0
    for machine in arns:
        for execution in sfn.list_executions(stateMachineArn=machine)["executions"]:
            executions += 1
            history = emulator.execution_history(execution["executionArn"])
            transitions += sum(1 for e in history if e["type"].endswith("StateEntered"))
            sqs_tasks += sum(1 for e in history if e["type"] == "TaskScheduled"
                             and e["taskScheduledEventDetails"]["resourceType"] == "sqs")
    return transitions, sqs_tasks, executions


async def run(emulator: Emulator, orders: int, share: float, workdir: Path) -> Counts:
    prefix = f"c{uuid.uuid4().hex[:5]}-"
    for key, value in emulator.env().items():
        os.environ[key] = value
    resources = await asyncio.to_thread(
        provision_local, emulator.boto3_client, prefix,
        manual_review=ManualReviewTimings(review_timeout_seconds=60,
                                          escalation_timeout_seconds=60,
                                          delivery_timeout_seconds=30))
    settings = WorkerSettings(
        database_url=f"sqlite+aiosqlite:///{workdir / (prefix + 'cost.db')}",
        aws_endpoint_url=emulator.endpoint_url, queue_prefix=prefix, wait_time_seconds=20,
        outbox_poll_seconds=0.5)
    store = SqlStore.from_url(settings.database_url)
    await create_tables(store)
    await set_stock_levels(store, {"BOOK-1": orders * 2})
    transport = await SqsTransport.connect(settings.sqs())
    reply_to = await transport.queue_url(ORDER_SAGA_QUEUE)
    saga_settings = OrderSagaSettings(supervision=HandOffConfig(
        bus=resources.bus_name, reply_to=reply_to))
    worker = build_worker(settings, store, transport, saga_settings=saga_settings,
                          gateway=FakePaymentGateway(seed=1), carrier=FakeCarrier())
    sinks = await attach_bridge(worker, settings.aws())
    service = order_service(worker)
    stop = asyncio.Event()
    review_calls: Counter[str] = Counter()
    tasks = [asyncio.create_task(worker.run(install_signal_handlers=False)),
             asyncio.create_task(reviewer(emulator, resources.review_queue_url, stop,
                                          review_calls))]
    supervised = round(orders * share)
    reviewed = set(range(0, orders, max(1, orders // supervised)) if supervised else [])
    reviewed = set(sorted(reviewed)[:supervised])
    started = time.perf_counter()
    ids = []
    for i in range(orders):
        ids.append((await service.submit(order(i, i in reviewed))).order_id)
        await asyncio.sleep(0.02)  # paced: moto's SQS slows as a queue fills
    while True:
        pending = 0
        for order_id in ids:
            record = await service.get(order_id)
            pending += record is None or record.status == "Submitted"
        if not pending:
            break
        await asyncio.sleep(0.5)
    seconds = time.perf_counter() - started
    stop.set()
    worker.request_stop()
    await asyncio.gather(*tasks)
    await sinks.close()
    await transport.close()
    await store.close()
    transitions, sfn_sqs, executions = count_executions(
        emulator, list(resources.state_machines.values()))
    return Counts(orders=orders, supervised=len(reviewed),
                  sqs_workers=transport.total_calls, sqs_reviewer=sum(review_calls.values()),
                  sqs_workflows=sfn_sqs, eventbridge_events=sinks.events.entries_sent,
                  sfn_transitions=transitions, dynamodb_writes=executions,
                  seconds=seconds, sqs_by_operation=Counter(transport.calls))


def report(counts: Counts) -> None:
    n = counts.orders
    print(f"\n{n} orders, {counts.supervised} supervised ({counts.supervised / n:.1%}), "
          f"{counts.seconds:.1f} s on the emulator")
    print(f"  SQS requests            {counts.sqs:7d}  ({counts.sqs / n:.2f}/order: workers "
          f"{counts.sqs_workers}, reviewer {counts.sqs_reviewer}, workflows "
          f"{counts.sqs_workflows})")
    print(f"    by operation (workers): {dict(sorted(counts.sqs_by_operation.items()))}")
    print(f"  EventBridge events      {counts.eventbridge_events:7d}")
    print(f"  Step Functions transitions {counts.sfn_transitions:4d}  "
          f"({counts.sfn_transitions / max(1, counts.supervised):.1f} per supervised order)")
    print(f"  DynamoDB writes         {counts.dynamodb_writes:7d}")
    dollars = counts.dollars()
    per_million = {k: v / n * 1e6 for k, v in dollars.items()}
    total = sum(per_million.values())
    print("\nper million orders (USD, list prices, no free tier):")
    for name, value in per_million.items():
        print(f"  {name:16s} ${value:10.2f}")
    print(f"  {'stepsaga total':16s} ${total:10.2f}")
    baseline = ALL_SFN_TRANSITIONS_PER_ORDER * PRICE_SFN_TRANSITION * 1e6
    print(f"  {'all-Step-Functions':16s} ${baseline:10.2f}  "
          f"({ALL_SFN_TRANSITIONS_PER_ORDER} transitions an order)")
    print(f"  ratio stepsaga / all-Step-Functions: {total / baseline:.3f} "
          f"(1/{baseline / total:.0f}); target ≤ 0.1")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--supervised", type=float, default=0.05,
                        help="share of orders that go to manual review (default 0.05)")
    parser.add_argument("--repeats", type=int, default=1)
    options = parser.parse_args()
    if options.orders < 1 or not 0 <= options.supervised <= 1:
        parser.error("--orders must be ≥ 1 and --supervised within 0..1")
    print(describe(("moto", "aiobotocore", "sqlalchemy", "pydantic")))
    print(f"parameters: orders={options.orders} supervised={options.supervised} "
          f"repeats={options.repeats}; SQLite store, one worker process")
    with start_emulator() as emulator, tempfile.TemporaryDirectory() as tmp:
        for _ in range(options.repeats):
            report(await run(emulator, options.orders, options.supervised, Path(tmp)))


if __name__ == "__main__":
    run_main(main())
