"""The local AWS emulator: moto 5.2.5 in server mode on 127.0.0.1, with Step Functions
execution switched on and our extensions applied. Tests and the demo use it; nothing
here reaches AWS.

    from core_saga.emulator import start_emulator

    with start_emulator() as aws:
        queue = aws.create_queue("payment")          # and payment-dlq, with redrive
        sqs = aws.boto3_client("sqs")
        async with aws.aio_client("sqs") as client:  # aiobotocore
            ...

``STEPSAGA_AWS_ENDPOINT_URL`` points `start_emulator` at a server already running.
pytest: ``pytest_plugins = ["core_saga.emulator.pytest_plugin"]`` gives the fixtures
``emulator`` (session) and ``aws`` (per test, unique names). See docs/emulator.md.
"""

from ._emulator import (
    ENDPOINT_ENV,
    FAKE_KEY,
    FAKE_ROLE_ARN,
    MANIFEST_PATH,
    Emulator,
    EmulatorMismatchError,
    QueueInfo,
    create_sqs_queue,
    free_port,
    patched_environ,
    require_extensions,
    server_manifest,
    start_emulator,
)
from ._extensions import EXTENSIONS

__all__ = [
    "ENDPOINT_ENV",
    "EXTENSIONS",
    "FAKE_KEY",
    "FAKE_ROLE_ARN",
    "MANIFEST_PATH",
    "Emulator",
    "EmulatorMismatchError",
    "QueueInfo",
    "create_sqs_queue",
    "free_port",
    "patched_environ",
    "require_extensions",
    "server_manifest",
    "start_emulator",
]
