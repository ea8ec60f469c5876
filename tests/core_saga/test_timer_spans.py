"""A timer's span: from its due time to its sending, in the trace that scheduled it,
beside the send span of the message it fires."""

from __future__ import annotations

from datetime import timedelta

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core_saga import ConsumeContext, Consumer, Message
from core_saga.testing import SagaTestHarness
from core_saga.tracing import tracer, use_tracer_provider


class Reminder(Message):
    message_namespace = "t.timers"
    n: int


class Remembered(Consumer[Reminder]):
    def __init__(self) -> None:
        self.got: list[int] = []

    async def consume(self, ctx: ConsumeContext[Reminder]) -> None:
        self.got.append(ctx.message.n)


async def test_a_timer_fires_in_the_trace_that_scheduled_it() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    use_tracer_provider(provider)
    try:
        async with SagaTestHarness() as h:
            consumer = Remembered()
            h.add_consumer(consumer, queue="reminders")
            found = tracer()
            assert found is not None
            with found.start_as_current_span("schedule"):
                async with h.outbox().transaction() as tx:
                    tx.send("reminders", Reminder(n=1), delay=timedelta(hours=2))
            due = h.clock.now() + timedelta(hours=2)
            await h.advance(timedelta(hours=1))
            assert consumer.got == []
            assert not [s for s in exporter.get_finished_spans() if s.name.startswith("timer")]
            await h.advance(timedelta(hours=2))  # an hour late
            assert consumer.got == [1]
    finally:
        use_tracer_provider(None)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    timer, create = spans["timer Reminder"], spans["reminders create"]
    send, root = spans["reminders send"], spans["schedule"]
    assert {s.context.trace_id for s in spans.values()} == {root.context.trace_id}
    assert timer.parent is not None and timer.parent.span_id == create.context.span_id
    assert send.parent is not None and send.parent.span_id == create.context.span_id
    assert timer.start_time == int(due.timestamp() * 1e9)  # from its due time
    assert timer.end_time is not None
    assert timer.end_time - timer.start_time == 3600 * 10**9  # sent an hour late
