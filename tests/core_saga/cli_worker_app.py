"""A worker factory for the CLI's tests: one consumer, on the database that
``STEPSAGA_DATABASE_URL`` names, its tables left as they are (no ``create_schema``: the
packaged migrations are the user's to apply)."""

from __future__ import annotations

from core_saga import ConsumeContext, Consumer, Message
from core_saga._settings import WorkerSettings
from core_saga._worker import Worker
from core_saga.persistence import store_from_url
from core_saga.transports import InMemoryTransport


class Ping(Message):
    message_namespace = "t.cli"
    n: int


class Pong(Consumer[Ping]):
    async def consume(self, ctx: ConsumeContext[Ping]) -> None:
        return None


async def worker(settings: WorkerSettings) -> Worker:
    built = Worker(settings, store=store_from_url(settings.database_url, must_exist=True),
                   transport=InMemoryTransport())
    built.add_consumer(Pong(), queue="pings")
    return built
