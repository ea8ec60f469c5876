"""Step Functions through aiobotocore: the review answers and the console's reads."""

from __future__ import annotations

from typing import Any

import orjson
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from core_saga import AwsConfig

TASK_GONE_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
"""What Step Functions answers for a task token it no longer accepts: ``TaskTimedOut``
on AWS, ``InvalidToken`` or ``TaskDoesNotExist`` on the local emulator."""


class TaskGoneError(Exception):
    """The workflow no longer accepts this task token (timed out, answered, ended)."""

    def __init__(self, code: str) -> None:
        super().__init__(f"the workflow no longer accepts this task ({code})")
        self.code = code


def execution_console_url(config: AwsConfig, execution_arn: str) -> str | None:
    """The AWS console page of an execution (None on the emulator). The region is the
    ARN's own, falling back to the configured one."""
    if config.local:
        return None
    parts = execution_arn.split(":")
    region = parts[3] if len(parts) > 3 and parts[3] else config.region
    return (f"https://{region}.console.aws.amazon.com/states/home?region={region}"
            f"#/v2/executions/details/{execution_arn}")


def error_code(error: ClientError) -> str:
    """The AWS error code of `error`."""
    return str(error.response.get("Error", {}).get("Code", ""))


class StepFunctions:
    """The few Step Functions calls the console makes (a client per call: they are rare)."""

    def __init__(self, config: AwsConfig | None = None) -> None:
        self.config = config or AwsConfig.from_env()
        self._session = get_session()

    def _client(self) -> Any:
        return self._session.create_client("stepfunctions", **self.config.client_kwargs())

    async def send_task_success(self, task_token: str, output: str) -> None:
        """SendTaskSuccess; :class:`TaskGoneError` when the token is no longer accepted."""
        async with self._client() as sfn:
            try:
                await sfn.send_task_success(taskToken=task_token, output=output)
            except ClientError as error:
                if error_code(error) in TASK_GONE_ERRORS:
                    raise TaskGoneError(error_code(error)) from None
                raise

    async def send_task_failure(self, task_token: str, error: str, cause: str) -> None:
        """SendTaskFailure; :class:`TaskGoneError` when the token is no longer accepted."""
        async with self._client() as sfn:
            try:
                await sfn.send_task_failure(taskToken=task_token, error=error, cause=cause)
            except ClientError as exc:
                if error_code(exc) in TASK_GONE_ERRORS:
                    raise TaskGoneError(error_code(exc)) from None
                raise

    async def describe_execution(self, execution_arn: str) -> dict[str, Any]:
        """DescribeExecution, as returned (datetimes kept)."""
        async with self._client() as sfn:
            answer: dict[str, Any] = await sfn.describe_execution(executionArn=execution_arn)
        answer.pop("ResponseMetadata", None)
        return answer

    async def stop_execution(self, execution_arn: str, error: str, cause: str) -> None:
        """StopExecution (an execution that has ended already is left as it is)."""
        async with self._client() as sfn:
            await sfn.stop_execution(executionArn=execution_arn, error=error[:256],
                                     cause=cause[:32768])

    async def definition_for_execution(self, execution_arn: str) -> dict[str, Any]:
        """The definition (parsed ASL) of the state machine version an execution runs."""
        async with self._client() as sfn:
            answer = await sfn.describe_state_machine_for_execution(executionArn=execution_arn)
        definition = orjson.loads(answer["definition"])
        return definition if isinstance(definition, dict) else {}

    async def execution_history(self, execution_arn: str, *,
                                max_events: int = 25_000) -> list[dict[str, Any]]:
        """GetExecutionHistory, every page, oldest first."""
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        async with self._client() as sfn:
            while len(events) < max_events:
                page = await sfn.get_execution_history(**kwargs)
                events.extend(page.get("events", []))
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
        return events
