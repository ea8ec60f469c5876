"""Start moto's server on loopback with Step Functions execution on, and hand out
configured clients."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

FAKE_KEY = "testing"
FAKE_ROLE_ARN = "arn:aws:iam::123456789012:role/stepsaga-emulator"
ENDPOINT_ENV = "STEPSAGA_AWS_ENDPOINT_URL"
"""Set to ``http://127.0.0.1:PORT`` to use a server that is already running."""

_LIVE: dict[int, subprocess.Popen[bytes]] = {}
"""Servers started here and not yet stopped. Holding them keeps their stdin pipes open:
a server exits when its pipe closes (when this process dies), not when an `Emulator`
object is garbage-collected."""


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


def create_sqs_queue(sqs: Any, name: str, *, dlq: bool = True, max_receive_count: int = 10,
                     fifo: bool = False, visibility_timeout: int = 30) -> QueueInfo:
    """Create queue `name` with a boto3 SQS client, and with `dlq` its dead-letter queue
    ``name-dlq`` and a redrive policy after `max_receive_count` receives, as ``infra/``
    deploys every queue. FIFO names get ``.fifo``. (A worker dead-letters a failing
    message itself, with the reason, after its ``max_deliveries``, and refuses to run on
    a queue whose `max_receive_count` is below that plus its ``dead_letter_margin``.)"""
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


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables; the old values come back after.
    ``with patched_environ(emulator.env()):`` points boto3 and aiobotocore at the emulator
    with fake credentials for a block."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        _set_environ(values)
        yield
    finally:
        _set_environ(saved)


def _set_environ(values: Mapping[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""For the control calls: the server is on loopback, never behind a proxy."""


def _post_json(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with _DIRECT.open(request, timeout=10) as response:
        response.read()


MANIFEST_PATH = "/moto-api/stepsaga"
"""The route where a server started by our launcher says what it applied."""


class EmulatorMismatchError(RuntimeError):
    """The server at an endpoint is not the emulator a caller needs: a plain moto (no
    extensions), one missing some extensions, or one with Step Functions execution off.
    The message names what is missing and how to start the right one."""


def server_manifest(endpoint_url: str, *, timeout: float = 5.0) -> dict[str, Any] | None:
    """What the server at `endpoint_url` applied (``{"moto", "extensions",
    "executeStateMachine"}``), or None when it is not our emulator (a plain moto answers
    404 there). Raises ``OSError`` when nothing answers."""
    try:
        with _DIRECT.open(f"{endpoint_url.rstrip('/')}{MANIFEST_PATH}",
                          timeout=timeout) as response:
            body = json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise
    except ValueError:
        return None
    return body if isinstance(body, dict) and "extensions" in body else None


def require_extensions(endpoint_url: str, extensions: tuple[str, ...], *,
                       execution: bool = True) -> dict[str, Any]:
    """The server's manifest, after checking that it applied every module in
    `extensions` (and, with `execution`, runs state machines); EmulatorMismatchError
    naming what is missing otherwise."""
    start = ("start it with `python -m core_saga.emulator._server --port PORT --parent 0` "
             "(or let `start_emulator()` start one)")
    manifest = server_manifest(endpoint_url)
    if manifest is None:
        raise EmulatorMismatchError(
            f"{endpoint_url} is not the stepsaga emulator (no {MANIFEST_PATH}): a plain "
            f"moto server lacks the extensions this needs ({', '.join(extensions)}); {start}")
    missing = [name for name in extensions if name not in manifest["extensions"]]
    if missing:
        raise EmulatorMismatchError(
            f"the emulator at {endpoint_url} lacks the extension(s) {', '.join(missing)} "
            f"(it applied {', '.join(manifest['extensions']) or 'none'}); {start}")
    if execution and not manifest.get("executeStateMachine"):
        raise EmulatorMismatchError(
            f"the emulator at {endpoint_url} does not run state machines: POST "
            '{"stepfunctions": {"execute_state_machine": true}} to /moto-api/config, or '
            "start it without --no-execute")
    return manifest


class Emulator:
    """A running moto server (or one given by ``STEPSAGA_AWS_ENDPOINT_URL``).

    Use it as a context manager, or call :meth:`stop`. Clients from
    :meth:`boto3_client` and :meth:`aio_client` point at it with fake credentials.
    """

    def __init__(self, endpoint_url: str, *, region: str = "us-east-1",
                 process: subprocess.Popen[bytes] | None = None) -> None:
        self.endpoint_url = endpoint_url
        parts = urllib.parse.urlsplit(endpoint_url)
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.region = region
        self.process = process
        self.credentials = {"aws_access_key_id": FAKE_KEY, "aws_secret_access_key": FAKE_KEY}
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server this object started (a given one is left running)."""
        process = self.process
        if process is None:
            return
        _LIVE.pop(process.pid, None)
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()  # the server exits at end of file
        for ending in (None, process.terminate, process.kill):
            if ending is not None:
                ending()
            try:
                process.wait(timeout=5)
                return
            except subprocess.TimeoutExpired:
                continue

    def manifest(self) -> dict[str, Any] | None:
        """What the server applied (see :func:`server_manifest`); None for a plain moto."""
        return server_manifest(self.endpoint_url)

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
        """A boto3 client for `service` (one per service, made once; boto3 clients are
        safe to share between threads)."""
        with self._clients_lock:
            if service not in self._clients:
                import boto3

                session = boto3.session.Session()
                self._clients[service] = session.client(  # type: ignore[call-overload]
                    service, **self.client_kwargs())
            return self._clients[service]

    def aio_session(self) -> Any:
        """An aiobotocore session with the fake credentials and the region; create
        clients with ``session.create_client(service, endpoint_url=emulator.endpoint_url)``
        (or use :meth:`aio_client`)."""
        from aiobotocore.session import get_session

        session = get_session()
        session.set_credentials(FAKE_KEY, FAKE_KEY)
        session.set_config_variable("region", self.region)
        return session

    @contextlib.asynccontextmanager
    async def aio_client(self, service: str) -> AsyncIterator[Any]:
        """``async with emulator.aio_client("sqs") as sqs: ...`` (aiobotocore)."""
        from aiobotocore.session import get_session

        async with get_session().create_client(service, **self.client_kwargs()) as client:
            yield client

    def create_queue(self, name: str, *, dlq: bool = True, max_receive_count: int = 10,
                     fifo: bool = False, visibility_timeout: int = 30) -> QueueInfo:
        """Create `name` (and `name-dlq` with a redrive policy after
        `max_receive_count` receives). FIFO names get ``.fifo``."""
        return create_sqs_queue(self.boto3_client("sqs"), name, dlq=dlq,
                                max_receive_count=max_receive_count, fifo=fifo,
                                visibility_timeout=visibility_timeout)

    def create_bus(self, name: str) -> str:
        """Create a custom EventBridge bus; its ARN."""
        arn: str = self.boto3_client("events").create_event_bus(Name=name)["EventBusArn"]
        return arn

    def fail_put_events(self, entries: int, *, error_code: str = "ThrottlingException",
                        bus: str | None = None, seconds: float = 2.0) -> None:
        """Make the next `entries` PutEvents entries (to `bus`, or any bus) within
        `seconds` fail with `error_code`, as a partial failure (``FailedEntryCount >
        0``); see the ``events_put_faults`` extension."""
        detail: dict[str, Any] = {"entries": entries, "errorCode": error_code,
                                  "seconds": seconds}
        if bus is not None:
            detail["bus"] = bus
        self.boto3_client("events").put_events(Entries=[{
            "Source": "stepsaga.emulator", "DetailType": "InjectPutEventsFailures",
            "Detail": json.dumps(detail)}])

    def create_state_machine(self, name: str, definition: dict[str, Any] | str, *,
                             role_arn: str = FAKE_ROLE_ARN) -> str:
        """Create a Standard state machine from ASL (a dict or JSON text); its ARN."""
        text = definition if isinstance(definition, str) else json.dumps(definition)
        arn: str = self.boto3_client("stepfunctions").create_state_machine(
            name=name, definition=text, roleArn=role_arn)["stateMachineArn"]
        return arn

    def wait_for_execution(self, execution_arn: str, *, timeout: float = 30.0,
                           poll: float = 0.05) -> dict[str, Any]:
        """DescribeExecution once the execution is no longer RUNNING (raises
        TimeoutError after `timeout` seconds)."""
        sfn = self.boto3_client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still RUNNING after {timeout} s")
            time.sleep(poll)

    def execution_history(self, execution_arn: str) -> list[dict[str, Any]]:
        """Every history event of an execution, oldest first."""
        sfn = self.boto3_client("stepfunctions")
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        while True:
            page = sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]


class _ExitedEarly(RuntimeError):
    """The server process ended before it answered (e.g. its port was taken)."""


def _wait_until_up(url: str, process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise _ExitedEarly(f"the emulator exited at start with code {process.returncode}")
        try:
            with _DIRECT.open(f"{url}/moto-api/", timeout=2) as response:
                response.read()
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the emulator at {url} did not answer in {timeout} s"
                                   ) from exc
            time.sleep(0.05)


def start_emulator(*, port: int | None = None, region: str = "us-east-1",
                   extensions: tuple[str, ...] = (), log_file: str | Path | None = None,
                   timeout: float = 60.0) -> Emulator:
    """Start moto's server on 127.0.0.1 (a free port unless given) as a subprocess, with
    our extensions and Step Functions execution on, and set ``MOTO_PORT`` here too.

    With ``STEPSAGA_AWS_ENDPOINT_URL`` set, nothing is started: that server is used (and
    configured). ``extensions`` are extra modules the server imports before serving;
    ``log_file`` (or ``STEPSAGA_EMULATOR_LOG``) keeps the server's output.
    """
    given = os.environ.get(ENDPOINT_ENV)
    if given:
        emulator = Emulator(given.rstrip("/"), region=region)
        _wait_until_up(emulator.endpoint_url, None, timeout)
        emulator.configure()
        os.environ["MOTO_PORT"] = str(emulator.port)
        return emulator
    attempts = 1 if port else 3  # a free port can be taken before the server binds it
    for attempt in range(attempts):
        try:
            emulator = _spawn(port or free_port(), region, extensions, log_file, timeout)
            break
        except _ExitedEarly:
            if attempt == attempts - 1:
                raise
    os.environ["MOTO_PORT"] = str(emulator.port)
    return emulator


def _spawn(port: int, region: str, extensions: tuple[str, ...],
           log_file: str | Path | None, timeout: float) -> Emulator:
    env = {**os.environ, "MOTO_PORT": str(port), "AWS_ACCESS_KEY_ID": FAKE_KEY,
           "AWS_SECRET_ACCESS_KEY": FAKE_KEY, "AWS_DEFAULT_REGION": region}
    for name in ("NO_PROXY", "no_proxy"):  # the interpreter's calls to itself stay local
        env[name] = ",".join(filter(None, [env.get(name), "127.0.0.1", "localhost"]))
    command = [sys.executable, "-m", "core_saga.emulator._server", "--port", str(port),
               "--parent", str(os.getpid()), "--watch-stdin"]
    for module in extensions:
        command += ["--extension", module]
    log_target = os.environ.get("STEPSAGA_EMULATOR_LOG") or log_file
    # Without a log file the output goes to an unlinked temporary file, read if the
    # server fails to start; this process lets go of it once the server answers.
    output = open(log_target, "ab") if log_target else tempfile.TemporaryFile()  # noqa: SIM115
    with output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=output,
                                   stdin=subprocess.PIPE)
        _LIVE[process.pid] = process
        emulator = Emulator(f"http://127.0.0.1:{port}", region=region, process=process)
        try:
            _wait_until_up(emulator.endpoint_url, process, timeout)
            emulator.configure()
        except BaseException as exc:
            emulator.stop()
            if isinstance(exc, _ExitedEarly) and not log_target:
                output.seek(0)
                tail = output.read()[-3000:].decode(errors="replace")
                raise _ExitedEarly(f"{exc}; its output ends:\n{tail}") from None
            raise
    return emulator
