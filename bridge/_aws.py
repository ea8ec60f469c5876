"""aiobotocore clients for the bridge's sinks (EventBridge, Step Functions)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.session import get_session

from core_saga import AwsConfig


class AwsClients:
    """Opens the EventBridge and Step Functions clients once; close with :meth:`close`
    (or use it as an async context manager)."""

    def __init__(self, config: AwsConfig) -> None:
        self.config = config
        self._stack = AsyncExitStack()
        self._clients: dict[str, Any] = {}

    async def client(self, service: str) -> Any:
        """The client for `service` (``events`` or ``stepfunctions``), opened on first use."""
        found = self._clients.get(service)
        if found is None:
            found = await self._stack.enter_async_context(
                # the sinks retry themselves (and the outbox after them): botocore's own
                # retries would only hide throttling and multiply the calls
                get_session().create_client(service,
                                            **self.config.client_kwargs(max_attempts=1)))
            self._clients[service] = found
        return found

    async def close(self) -> None:
        """Close every client opened."""
        await self._stack.aclose()
        self._clients.clear()

    async def __aenter__(self) -> AwsClients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
