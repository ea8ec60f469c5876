"""What telemetry costs a message: the in-memory engine handling messages (decode, one
consumer, one send to the outbox, commit) with telemetry off, with metrics on, and with
metrics and tracing on (every span recorded by an SDK tracer provider into a batching
processor whose exporter drops them), all measured in the same run, interleaved.

    .venv/bin/python benchmarks/telemetry.py [--messages 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import describe, interleave, run_main, summary
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from core_saga import ConsumeContext, Consumer, Envelope, Message, SystemClock
from core_saga.extension import (
    ConsumerHandler,
    Endpoint,
    OutboxDispatcher,
    ReceivePipeline,
    TransportSink,
    new_id,
)
from core_saga.persistence import MemoryStore
from core_saga.telemetry import configure_metrics
from core_saga.tracing import use_tracer_provider
from core_saga.transports import InMemoryTransport, ReceivedMessage


class Ping(Message):
    message_namespace = "bench.telemetry"
    n: int


class Forward(Consumer[Ping]):
    async def consume(self, ctx: ConsumeContext[Ping]) -> None:
        ctx.send("elsewhere", Ping(n=ctx.message.n))


class _Drop(SpanExporter):
    def export(self, spans: Sequence[object]) -> SpanExportResult:  # type: ignore[override]
        return SpanExportResult.SUCCESS


async def per_message(messages: int) -> float:
    """Microseconds per message through the receive pipeline (outbox rows left unsent)."""
    store = MemoryStore()
    await store.create_schema()
    clock = SystemClock()
    dispatcher = OutboxDispatcher(store, {"send": TransportSink(InMemoryTransport())}, clock)
    endpoint = Endpoint("pings", [ConsumerHandler(Forward())], store=store, clock=clock,
                        routes=lambda _urn: ())
    pipeline = ReceivePipeline(endpoint, dispatcher, clock, batch_sends=True)
    bodies = [Envelope(message=Ping(n=n), message_id=new_id(), correlation_id=str(n)).encode()
              for n in range(messages)]
    started = time.perf_counter()
    for n, body in enumerate(bodies):
        await pipeline.handle(ReceivedMessage(body, n, 1, str(n),
                                              received_ns=(time.time_ns(), time.time_ns())))
    elapsed = time.perf_counter() - started
    for batch in dispatcher._batches.values():  # what waits is not sent: only the
        batch.rows.clear()                        # handling is measured
        if batch.timer is not None:
            batch.timer.cancel()
    return elapsed / messages * 1e6


VARIANTS = ("off", "metrics", "metrics+traces")


async def child(variant: str, messages: int) -> float:
    """One measurement in this process: a meter provider is process-wide and cannot be
    unset, so each variant runs in a process of its own."""
    provider = None
    if variant != "off":
        configure_metrics(service_name="bench", prometheus=True)
    if variant == "metrics+traces":
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(_Drop(), max_queue_size=100_000))
        use_tracer_provider(provider)
    await per_message(min(200, messages))  # warm up imports and caches
    try:
        return await per_message(messages)
    finally:
        if provider is not None:
            provider.shutdown()


async def _spawn(variant: str, messages: int) -> float:
    process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--child", variant, "--messages", str(messages),
        stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"the {variant} run failed ({process.returncode})")
    return float(out.decode().strip())


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.messages < 1 or options.repeats < 1:
        parser.error("--messages and --repeats must be 1 or more")
    if options.child:
        print(await child(options.child, options.messages))
        return
    print(describe(("opentelemetry-api", "opentelemetry-sdk", "pydantic")))
    runs: dict[str, Callable[[], Awaitable[float]]] = {
        variant: (lambda v=variant: _spawn(v, options.messages)) for variant in VARIANTS}
    results = await interleave(runs, options.repeats)
    for name, values in results.items():
        print(f"{name:>15}  µs per message  {summary(values)}")
    off = statistics.median(results["off"])
    for name in VARIANTS[1:]:
        value = statistics.median(results[name])
        print(f"figures: {name} costs {value - off:.1f} µs per message over off "
              f"({value / off:.2f}×)")


if __name__ == "__main__":
    run_main(main())
