"""Opening SQS for an operator's action: few retries, so that an unreachable AWS is a
clear answer within seconds rather than a minute of backoff."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiobotocore.session import get_session

from core_saga import AwsConfig
from core_saga.transports import SqsTransport
from core_saga.transports._sqs import SqsConfig

MAX_ATTEMPTS = 2


@asynccontextmanager
async def sqs_client(aws: AwsConfig) -> AsyncIterator[Any]:
    """An aiobotocore SQS client for `aws`."""
    async with get_session().create_client(
            "sqs", **aws.client_kwargs(max_attempts=MAX_ATTEMPTS)) as client:
        yield client


@asynccontextmanager
async def queue_transport(aws: AwsConfig, queue_prefix: str) -> AsyncIterator[SqsTransport]:
    """A transport that sends to the workers' queues (`queue_prefix` + endpoint name)."""
    config = SqsConfig(region=aws.region, endpoint_url=aws.endpoint_url,
                       aws_access_key_id=aws.aws_access_key_id,
                       aws_secret_access_key=aws.aws_secret_access_key,
                       queue_prefix=queue_prefix)
    async with sqs_client(aws) as client:
        yield SqsTransport(client, config)
