"""The worker factory the end-to-end tests start as processes:
``stepsaga worker tests.sqs.e2e_app:build``."""

from __future__ import annotations

from core_saga import Worker, WorkerSettings
from core_saga.persistence import SqlStore
from core_saga.transports import SqsTransport
from examples.quickstart.services import host_services


async def build(settings: WorkerSettings) -> Worker:
    store = SqlStore.from_url(settings.database_url, schema=settings.database_schema)
    transport = await SqsTransport.connect(settings.sqs())
    return host_services(Worker(settings, store=store, transport=transport))
