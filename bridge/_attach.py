"""Registering the bridge's outbox sinks on a worker (or a test harness)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from core_saga import AwsConfig

from ._aws import AwsClients
from ._publisher import EVENTBRIDGE, EventBridgeSink
from ._task_answers import TASK_ANSWER, StepFunctionsSink


class SinkHost(Protocol):
    """What takes outbox sinks: a :class:`core_saga.Worker` or a test harness."""

    def add_sink(self, kind: str, sink: Any) -> object: ...


@dataclass
class BridgeSinks:
    """The sinks :func:`attach_bridge` registered, and the clients behind them."""

    clients: AwsClients
    events: EventBridgeSink
    tasks: StepFunctionsSink

    async def close(self) -> None:
        """Close the AWS clients (after the worker stopped)."""
        await self.clients.close()


async def attach_bridge(host: SinkHost, config: AwsConfig) -> BridgeSinks:
    """Deliver `host`'s EventBridge entries (kind ``eventbridge``) and task-token answers
    (kind ``sfn-task``) to AWS as `config` says. Close the result when done::

        sinks = await attach_bridge(worker, settings.aws())
        try:
            await worker.run()
        finally:
            await sinks.close()
    """
    clients = AwsClients(config)
    try:
        events = EventBridgeSink(await clients.client("events"))
        tasks = StepFunctionsSink(await clients.client("stepfunctions"))
    except BaseException:
        await clients.close()
        raise
    host.add_sink(EVENTBRIDGE, events)
    host.add_sink(TASK_ANSWER, tasks)
    return BridgeSinks(clients, events, tasks)
