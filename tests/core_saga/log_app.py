"""A worker factory for the logging test: ``stepsaga worker tests.core_saga.log_app:build``
handles one message (put on an in-process queue at start) whose note holds a line break,
and logs the note."""

from __future__ import annotations

import logging

from core_saga import ConsumeContext, Consumer, Envelope, Message, Worker, WorkerSettings
from core_saga.extension import new_id
from core_saga.transports import InMemoryTransport, TransportMessage

log = logging.getLogger("tests.log_app")

FORGED = 'fine\n{"level": "ERROR", "message": "forged"}'


class Noted(Message):
    message_namespace = "t.logs"
    note: str


class LogNote(Consumer[Noted]):
    async def consume(self, ctx: ConsumeContext[Noted]) -> None:
        log.warning("note: %s", ctx.message.note)


async def build(settings: WorkerSettings) -> Worker:
    store = settings.store()
    await store.create_schema()
    transport = InMemoryTransport()
    worker = Worker(settings, store=store, transport=transport)
    worker.add_consumer(LogNote(), queue="notes")
    worker.on_stop(store.close)
    envelope = Envelope(message=Noted(note=FORGED), message_id=new_id(), correlation_id="c-7")
    await transport.send_batch("notes", [TransportMessage(envelope.encode(), "1", "t")])
    return worker
