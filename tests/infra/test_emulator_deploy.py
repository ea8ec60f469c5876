"""A real deploy of the CDK app to the local emulator with the pinned CDK CLI:
``cdk bootstrap``, ``cdk deploy``, an update with a changed context value, and
``cdk destroy`` — each checked with boto3, because the CLI can report success for a
change set the emulator failed on. In between, the deployed workflows run: a
``SupervisionRequested`` event on the deployed bus starts each state machine, which
claims the hand-off, reports to the saga's queue, does its work, and ends when the
saga acknowledges the outcome.

Needs ``npm ci`` in infra/ (``make infra-deps``); skipped without it, except in CI.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bridge.contracts import TASK_TOKEN_HEADER
from supervisor_workflows import (
    CLAIM_TABLE,
    REVIEW_QUEUE,
    SHIPPING_QUEUE,
    manual_review_definition,
    render_definition,
    slow_shipping_definition,
)

from .conftest import INFRA

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(300)]

CDK = INFRA / "node_modules" / ".bin" / "cdk"
ACCOUNT = "123456789012"
REGION = "us-east-1"
STAGE = "e2e"
STACK = f"stepsaga-{STAGE}"
QUEUES = ("order-saga", "payment", "inventory", "shipping", "orders", "review")
FIRST = {"stepsaga:stage": STAGE, "stepsaga:removalPolicy": "destroy",
         "stepsaga:reviewTimeoutSeconds": "600", "stepsaga:logRetentionDays": "7"}
"""Context of the first deploy (``destroy`` so that ``cdk destroy`` leaves nothing)."""
SECOND = {**FIRST, "stepsaga:reviewTimeoutSeconds": "900", "stepsaga:logRetentionDays": "14"}
"""Context of the update: a longer review timeout and log retention."""

if not CDK.exists():
    reason = "the pinned CDK CLI is not installed: run `make infra-deps` (npm ci in infra/)"
    if os.environ.get("CI"):
        raise RuntimeError(reason)  # CI installs it: a missing CLI is a broken set-up
    pytestmark.append(pytest.mark.skip(reason=reason))


@dataclass
class CdkCli:
    """The pinned CDK CLI pointed at the emulator, with fake credentials only."""

    endpoint_port: int
    workdir: Path
    log: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "NODE_OPTIONS")
        env = {k: v for k, v in os.environ.items() if k in keep}
        empty = self.workdir / "no-aws-config"
        empty.write_text("")
        env.update({
            # every SDK call of the CLI goes to the emulator; moto reads the template URL
            # of an S3 upload only when the host reads "localhost"
            "AWS_ENDPOINT_URL": f"http://localhost:{self.endpoint_port}",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(empty), "AWS_SHARED_CREDENTIALS_FILE": str(empty),
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "localhost,127.0.0.1", "no_proxy": "localhost,127.0.0.1",
            "CDK_DISABLE_VERSION_CHECK": "1", "CDK_DISABLE_CLI_TELEMETRY": "1",
            "NODE_NO_WARNINGS": "1", "CI": "true", "FORCE_COLOR": "0",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "18,19,20,21",
        })
        return env

    def run(self, *args: str, context: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``cdk ARGS`` in infra/, the app run by this interpreter, output to a
        directory of this test; fails the test on a non-zero exit."""
        command = [str(CDK), *args, "--app", f"{shlex.quote(sys.executable)} app.py",
                   "--output", str(self.workdir / "cdk.out")]
        for key, value in (context or {}).items():
            command += ["--context", f"{key}={value}"]
        started = time.monotonic()
        result = subprocess.run(command, cwd=INFRA, env=self.env(), capture_output=True,
                                text=True, timeout=timeout, check=False)
        self.log.append(f"$ cdk {' '.join(args)}  ({time.monotonic() - started:.1f} s, "
                        f"exit {result.returncode})\n{result.stdout}\n{result.stderr}")
        assert result.returncode == 0, self.log[-1]
        return result


def stack_outputs(cf: Any) -> dict[str, str]:
    [stack] = cf.describe_stacks(StackName=STACK)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def stack_status(cf: Any) -> str:
    [stack] = cf.describe_stacks(StackName=STACK)["Stacks"]
    assert "FAILED" not in stack["StackStatus"], stack.get("StackStatusReason")
    status: str = stack["StackStatus"]
    return status


def receive_one(sqs: Any, url: str, *, timeout: float = 20) -> dict[str, Any]:
    """The next message on `url` (deleted), as its JSON envelope."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1,
                                       MaxNumberOfMessages=1).get("Messages", [])
        if messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
            envelope: dict[str, Any] = json.loads(messages[0]["Body"])
            return envelope
    raise AssertionError(f"no message on {url} in {timeout} s")


def check_bootstrap(aws: Any) -> None:
    [toolkit] = aws.boto3_client("cloudformation").describe_stacks(
        StackName="CDKToolkit")["Stacks"]
    assert toolkit["StackStatus"] == "CREATE_COMPLETE"
    version = aws.boto3_client("ssm").get_parameter(
        Name="/cdk-bootstrap/hnb659fds/version")["Parameter"]["Value"]
    assert int(version) >= 6  # the synthesized template's CheckBootstrapVersion rule
    buckets = [b["Name"] for b in aws.boto3_client("s3").list_buckets()["Buckets"]]
    assert f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}" in buckets


def check_resources(aws: Any, synthesized_template: dict[str, Any]) -> dict[str, str]:
    """Every resource of the stack exists as the template says; the outputs."""
    cf = aws.boto3_client("cloudformation")
    assert stack_status(cf) == "CREATE_COMPLETE"
    deployed = {r["LogicalResourceId"]: r for r in cf.list_stack_resources(
        StackName=STACK)["StackResourceSummaries"]}
    assert set(deployed) == set(synthesized_template["Resources"])
    for logical, resource in deployed.items():
        assert resource["ResourceStatus"] == "CREATE_COMPLETE", logical
        assert resource["PhysicalResourceId"], logical
    outputs = stack_outputs(cf)
    assert set(outputs) == set(synthesized_template["Outputs"])

    sqs = aws.boto3_client("sqs")
    for name in [*QUEUES, "supervision-events-dlq"]:
        url = sqs.get_queue_url(QueueName=f"{STAGE}-{name}")["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
            "Attributes"]
        assert attributes["SqsManagedSseEnabled"] == "true", name
        policy = json.loads(attributes["Policy"])
        assert any(s["Effect"] == "Deny" and s["Condition"] == {
            "Bool": {"aws:SecureTransport": "false"}} for s in policy["Statement"]), name
        if name in QUEUES:
            redrive = json.loads(attributes["RedrivePolicy"])
            assert redrive["deadLetterTargetArn"].endswith(f":{STAGE}-{name}-dlq"), name
            assert int(redrive["maxReceiveCount"]) == 5
            sqs.get_queue_url(QueueName=f"{STAGE}-{name}-dlq")

    events = aws.boto3_client("events")
    assert outputs["EventBusName"] == STACK
    events.describe_event_bus(Name=STACK)
    rules = {r["Name"]: r for r in events.list_rules(EventBusName=STACK)["Rules"]}
    sfn = aws.boto3_client("stepfunctions")
    for workflow in ("ManualReview", "SlowShipping"):
        rule = rules[f"{STACK}-{workflow}"]
        assert json.loads(rule["EventPattern"]) == {
            "detail-type": ["SupervisionRequested"], "detail": {"workflow": [workflow]}}
        [target] = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=STACK)[
            "Targets"]
        assert target["Arn"] == outputs[f"{workflow}StateMachineArn"]
        assert target["InputPath"] == "$.detail"
        assert target["RoleArn"].startswith(f"arn:aws:iam::{ACCOUNT}:role/")
        assert target["DeadLetterConfig"]["Arn"].endswith(f":{STAGE}-supervision-events-dlq")
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 24

        machine = sfn.describe_state_machine(
            stateMachineArn=outputs[f"{workflow}StateMachineArn"])
        assert machine["type"] == "STANDARD"
        assert machine["loggingConfiguration"]["level"] == "ALL"
        assert machine["loggingConfiguration"]["destinations"][0]["cloudWatchLogsLogGroup"][
            "logGroupArn"].endswith(f":/aws/vendedlogs/states/{STACK}-{workflow}")
        assert machine["tracingConfiguration"] == {"enabled": True}
        aws.boto3_client("iam").get_role(RoleName=machine["roleArn"].rsplit("/", 1)[-1])
    logs = aws.boto3_client("logs")
    groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/vendedlogs/states/{STACK}-")
    assert {g["logGroupName"]: g.get("retentionInDays") for g in groups["logGroups"]} == {
        f"/aws/vendedlogs/states/{STACK}-ManualReview": 7,
        f"/aws/vendedlogs/states/{STACK}-SlowShipping": 7}

    table = aws.boto3_client("dynamodb").describe_table(
        TableName=outputs["ClaimTableName"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "handoffId", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    return outputs


def check_definitions(aws: Any, outputs: dict[str, str], review_timeout: int) -> None:
    """The deployed ASL is supervisor_workflows' definition with the stack's table and
    queues substituted."""
    from stepsaga_infra.settings import InfraSettings

    settings = InfraSettings(review_timeout_seconds=review_timeout)
    expected = {
        "ManualReview": render_definition(
            manual_review_definition(settings.manual_review_timings()),
            {CLAIM_TABLE: outputs["ClaimTableName"],
             REVIEW_QUEUE: outputs["ReviewQueueUrl"]}),
        "SlowShipping": render_definition(
            slow_shipping_definition(settings.slow_shipping_timings()),
            {CLAIM_TABLE: outputs["ClaimTableName"],
             SHIPPING_QUEUE: outputs["ShippingQueueUrl"]}),
    }
    sfn = aws.boto3_client("stepfunctions")
    for workflow, text in expected.items():
        deployed = sfn.describe_state_machine(
            stateMachineArn=outputs[f"{workflow}StateMachineArn"])["definition"]
        assert json.loads(deployed) == json.loads(text), workflow


def request_supervision(aws: Any, outputs: dict[str, str], workflow: str,
                        payload: dict[str, Any]) -> str:
    """Put a SupervisionRequested event on the deployed bus; the execution it started."""
    handoff = str(uuid.uuid4())
    detail = {"schemaVersion": 1, "handoffId": handoff, "sagaType": "OrderToCash",
              "correlationId": f"order-{handoff[:8]}", "workflow": workflow,
              "reason": "e2e", "payload": payload, "replyTo": outputs["OrderSagaQueueUrl"],
              "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    answer = aws.boto3_client("events").put_events(Entries=[{
        "EventBusName": outputs["EventBusName"], "Source": "stepsaga.order-to-cash",
        "DetailType": "SupervisionRequested", "Detail": json.dumps(detail)}])
    assert answer["FailedEntryCount"] == 0
    sfn = aws.boto3_client("stepfunctions")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for execution in sfn.list_executions(
                stateMachineArn=outputs[f"{workflow}StateMachineArn"])["executions"]:
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            if json.loads(described["input"])["handoffId"] == handoff:
                arn: str = execution["executionArn"]
                return arn
        time.sleep(0.2)
    raise AssertionError(f"no {workflow} execution started for hand-off {handoff}")


def acknowledge_outcome(aws: Any, outputs: dict[str, str], execution: str) -> dict[str, Any]:
    """Read SupervisionStarted and SupervisionCompleted on the saga's queue, acknowledge
    the outcome as the saga's outbox does, and wait for the execution's end."""
    sqs, sfn = aws.boto3_client("sqs"), aws.boto3_client("stepfunctions")
    started = receive_one(sqs, outputs["OrderSagaQueueUrl"])
    assert started["messageType"].endswith(":SupervisionStarted:v1")
    assert started["message"]["executionArn"] == execution
    completed = receive_one(sqs, outputs["OrderSagaQueueUrl"])
    assert completed["messageType"].endswith(":SupervisionCompleted:v1")
    sfn.send_task_success(taskToken=completed["headers"][TASK_TOKEN_HEADER],
                          output=json.dumps({"acknowledged": True}))
    ended: dict[str, Any] = aws.wait_for_execution(execution, timeout=20)
    assert ended["status"] == "SUCCEEDED", ended
    message: dict[str, Any] = completed["message"]
    return message


def run_workflows(aws: Any, outputs: dict[str, str]) -> None:
    """Both deployed workflows, started through the deployed bus and rules."""
    sqs, sfn = aws.boto3_client("sqs"), aws.boto3_client("stepfunctions")
    dynamodb = aws.boto3_client("dynamodb")

    execution = request_supervision(aws, outputs, "ManualReview", {"orderId": "o-1"})
    task = receive_one(sqs, outputs["ReviewQueueUrl"])
    assert task["messageType"].endswith(":ReviewTask:v1")
    claim = dynamodb.get_item(TableName=outputs["ClaimTableName"], Key={
        "handoffId": {"S": task["message"]["handoffId"]}})["Item"]
    assert claim["executionArn"]["S"] == execution
    sfn.send_task_success(taskToken=task["headers"][TASK_TOKEN_HEADER],
                          output=json.dumps({"decision": "approved", "by": "e2e"}))
    outcome = acknowledge_outcome(aws, outputs, execution)
    assert outcome["outcome"] == "approved"

    execution = request_supervision(aws, outputs, "SlowShipping", {
        "commandType": "urn:message:stepsaga.examples:CreateShipment:v1",
        "command": {"orderId": "o-2"}})
    request = receive_one(sqs, outputs["ShippingQueueUrl"])
    assert request["messageType"] == "urn:message:stepsaga.examples:CreateShipment:v1"
    sfn.send_task_success(taskToken=request["headers"][TASK_TOKEN_HEADER],
                          output=json.dumps({"trackingId": "TRACK-1"}))
    outcome = acknowledge_outcome(aws, outputs, execution)
    assert outcome["outcome"] == "shipped"
    assert outcome["result"]["trackingId"] == "TRACK-1"


def check_update(aws: Any, outputs: dict[str, str]) -> None:
    cf = aws.boto3_client("cloudformation")
    assert stack_status(cf) == "UPDATE_COMPLETE"
    assert stack_outputs(cf) == outputs  # same resources, same names
    logs = aws.boto3_client("logs")
    groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/vendedlogs/states/{STACK}-")
    assert {g.get("retentionInDays") for g in groups["logGroups"]} == {14}
    check_definitions(aws, outputs, review_timeout=900)


def check_destroyed(aws: Any, outputs: dict[str, str]) -> None:
    cf = aws.boto3_client("cloudformation")
    with pytest.raises(ClientError):
        cf.describe_stacks(StackName=STACK)
    urls = aws.boto3_client("sqs").list_queues(QueueNamePrefix=f"{STAGE}-").get(
        "QueueUrls", [])
    assert urls == []
    machines = [m["stateMachineArn"] for m in aws.boto3_client("stepfunctions")
                .list_state_machines()["stateMachines"]]
    assert outputs["ManualReviewStateMachineArn"] not in machines
    assert outputs["SlowShippingStateMachineArn"] not in machines
    buses = [b["Name"] for b in aws.boto3_client("events").list_event_buses()["EventBuses"]]
    assert STACK not in buses
    assert outputs["ClaimTableName"] not in aws.boto3_client("dynamodb").list_tables()[
        "TableNames"]
    groups = aws.boto3_client("logs").describe_log_groups(
        logGroupNamePrefix=f"/aws/vendedlogs/states/{STACK}-")["logGroups"]
    assert groups == []


def test_cdk_bootstrap_deploy_update_destroy(cdk_emulator: Any, tmp_path: Path) -> None:
    cli = CdkCli(cdk_emulator.port, tmp_path)
    try:
        cli.run("bootstrap", f"aws://{ACCOUNT}/{REGION}", context=FIRST)
        check_bootstrap(cdk_emulator)

        cli.run("deploy", STACK, "--require-approval", "never", context=FIRST)
        template = json.loads((tmp_path / "cdk.out" / f"{STACK}.template.json").read_text())
        outputs = check_resources(cdk_emulator, template)
        check_definitions(cdk_emulator, outputs, review_timeout=600)
        run_workflows(cdk_emulator, outputs)

        cli.run("deploy", STACK, "--require-approval", "never", context=SECOND)
        check_update(cdk_emulator, outputs)
        run_workflows(cdk_emulator, outputs)  # still runs after the update

        cli.run("destroy", STACK, "--force", context=SECOND)
        check_destroyed(cdk_emulator, outputs)
    except BaseException:
        print("\n\n".join(cli.log))  # the CLI's own account of each step
        log = getattr(cdk_emulator, "log_file", None)
        if log is not None and Path(log).exists():
            print("emulator log (end):\n" + Path(log).read_text()[-5000:])
        raise
