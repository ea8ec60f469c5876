"""The worker factory the end-to-end tests start as processes:
``stepsaga worker tests.sqs.e2e_app:build``."""

from __future__ import annotations

from core_saga import Worker, WorkerSettings
from examples.quickstart.services import host_services


async def build(settings: WorkerSettings) -> Worker:
    # The store and the SQS transport from the settings, closed when the worker stops.
    return host_services(await Worker.from_settings(settings))
