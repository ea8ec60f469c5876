"""Start moto's server on loopback with Step Functions execution on, and hand out
configured clients."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

FAKE_KEY = "testing"
ENDPOINT_ENV = "STEPSAGA_AWS_ENDPOINT_URL"


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue the emulator made, with its dead-letter queue."""

    name: str
    url: str
    arn: str
    dlq_url: str | None = None
    dlq_arn: str | None = None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _post_json(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


class Emulator:
    """A running moto server (or one given by ``STEPSAGA_AWS_ENDPOINT_URL``).

    Use it as a context manager, or call :meth:`stop`. Clients from
    :meth:`boto3_client` and :meth:`aio_client` point at it with fake credentials.
    """

    def __init__(self, endpoint_url: str, *, region: str = "us-east-1",
                 process: subprocess.Popen[bytes] | None = None) -> None:
        self.endpoint_url = endpoint_url
        self.port = int(endpoint_url.rsplit(":", 1)[-1].split("/")[0])
        self.region = region
        self.process = process
        self.credentials = {"aws_access_key_id": FAKE_KEY, "aws_secret_access_key": FAKE_KEY}

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server this object started (a given one is left running)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def configure(self) -> None:
        """Switch Step Functions execution on (real ASL runs)."""
        _post_json(f"{self.endpoint_url}/moto-api/config",
                   {"stepfunctions": {"execute_state_machine": True}})

    def reset(self) -> None:
        """Forget every resource, then configure again."""
        _post_json(f"{self.endpoint_url}/moto-api/reset", {})
        self.configure()

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for boto3/aiobotocore clients that reach the emulator."""
        return {"endpoint_url": self.endpoint_url, "region_name": self.region,
                **self.credentials}

    def env(self) -> dict[str, str]:
        """Environment variables that point AWS SDKs and stepsaga workers here."""
        return {"AWS_ACCESS_KEY_ID": FAKE_KEY, "AWS_SECRET_ACCESS_KEY": FAKE_KEY,
                "AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region,
                "MOTO_PORT": str(self.port), "STEPSAGA_AWS_ENDPOINT_URL": self.endpoint_url,
                "STEPSAGA_AWS_REGION": self.region}

    def boto3_client(self, service: str) -> Any:
        """A boto3 client for `service`."""
        import boto3

        return boto3.client(service, **self.client_kwargs())  # type: ignore[call-overload]

    @contextlib.asynccontextmanager
    async def aio_client(self, service: str) -> AsyncIterator[Any]:
        """``async with emulator.aio_client("sqs") as sqs: ...`` (aiobotocore)."""
        from aiobotocore.session import get_session

        async with get_session().create_client(service, **self.client_kwargs()) as client:
            yield client

    def create_queue(self, name: str, *, dlq: bool = True, max_receive_count: int = 5,
                     fifo: bool = False, visibility_timeout: int = 30) -> QueueInfo:
        """Create `name` (and `name-dlq` with a redrive policy after
        `max_receive_count` receives). FIFO names get ``.fifo``."""
        sqs = self.boto3_client("sqs")
        suffix = ".fifo" if fifo else ""
        base = name.removesuffix(".fifo")
        attributes: dict[str, str] = {"VisibilityTimeout": str(visibility_timeout)}
        if fifo:
            attributes.update(FifoQueue="true", ContentBasedDeduplication="false")
        dlq_url = dlq_arn = None
        if dlq:
            dlq_url = sqs.create_queue(QueueName=f"{base}-dlq{suffix}",
                                       Attributes={k: v for k, v in attributes.items()
                                                   if k != "VisibilityTimeout"})["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
                "Attributes"]["QueueArn"]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)})
        url = sqs.create_queue(QueueName=f"{base}{suffix}", Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        return QueueInfo(f"{base}{suffix}", url, arn, dlq_url, dlq_arn)

    def create_bus(self, name: str) -> str:
        """Create a custom EventBridge bus; its ARN."""
        arn: str = self.boto3_client("events").create_event_bus(Name=name)["EventBusArn"]
        return arn


def _wait_until_up(url: str, process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the emulator exited at start with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=2) as response:
                response.read()
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the emulator at {url} did not answer in {timeout} s"
                                   ) from exc
            time.sleep(0.1)


def start_emulator(*, port: int | None = None, region: str = "us-east-1",
                   extensions: tuple[str, ...] = (), log_file: str | Path | None = None,
                   timeout: float = 60.0) -> Emulator:
    """Start moto's server on 127.0.0.1 (a free port unless given) as a subprocess, with
    our extensions and Step Functions execution on, and set ``MOTO_PORT`` here too.

    With ``STEPSAGA_AWS_ENDPOINT_URL`` set, nothing is started: that server is used.
    """
    given = os.environ.get(ENDPOINT_ENV)
    if given:
        emulator = Emulator(given.rstrip("/"), region=region)
        _wait_until_up(emulator.endpoint_url, None, timeout)
        emulator.configure()
        return emulator
    port = port or free_port()
    env = {**os.environ, "MOTO_PORT": str(port), "AWS_ACCESS_KEY_ID": FAKE_KEY,
           "AWS_SECRET_ACCESS_KEY": FAKE_KEY, "AWS_DEFAULT_REGION": region}
    command = [sys.executable, "-m", "core_saga.emulator._server", "--port", str(port),
               "--parent", str(os.getpid())]
    for module in extensions:
        command += ["--extension", module]
    log_target = os.environ.get("STEPSAGA_EMULATOR_LOG") or log_file
    output: Any = open(log_target, "ab") if log_target else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(command, env=env, stdout=output, stderr=output,
                               stdin=subprocess.DEVNULL)
    emulator = Emulator(f"http://127.0.0.1:{port}", region=region, process=process)
    try:
        _wait_until_up(emulator.endpoint_url, process, timeout)
        emulator.configure()
    except BaseException:
        emulator.stop()
        raise
    os.environ["MOTO_PORT"] = str(port)
    return emulator
