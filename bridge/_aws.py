"""aiobotocore clients for the bridge's sinks, configured like the SQS transport."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from aiobotocore.session import get_session
from botocore.config import Config

from core_saga import WorkerSettings


@dataclass(frozen=True)
class AwsConfig:
    """Where the bridge's AWS calls go. Leave `endpoint_url` None on AWS; the local
    emulator sets it."""

    region: str = "us-east-1"
    endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> AwsConfig:
        """The AWS settings of a worker (``STEPSAGA_AWS_*``)."""
        sqs = settings.sqs()
        return cls(region=sqs.region, endpoint_url=sqs.endpoint_url,
                   aws_access_key_id=sqs.aws_access_key_id,
                   aws_secret_access_key=sqs.aws_secret_access_key)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``create_client``."""
        kwargs: dict[str, Any] = {
            "region_name": self.region,
            # the sinks retry themselves (and the outbox after them): botocore's own
            # retries would only hide throttling and multiply the calls
            "config": Config(retries={"max_attempts": 1, "mode": "standard"},
                             connect_timeout=5, read_timeout=30),
        }
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        if self.aws_access_key_id:
            kwargs["aws_access_key_id"] = self.aws_access_key_id
            kwargs["aws_secret_access_key"] = self.aws_secret_access_key
        return kwargs


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
                get_session().create_client(service, **self.config.client_kwargs()))
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
