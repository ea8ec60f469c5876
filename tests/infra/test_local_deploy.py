"""``stepsaga local deploy`` as a platform engineer runs it, end to end, on a fresh
emulator with the pinned CDK CLI:

1. ``stepsaga local deploy`` starts the emulator, bootstraps, deploys the ``local``
   stage and prints the workers' settings; the stack is checked resource by resource
   with boto3 (the CLI can report success for a change set the emulator failed);
2. the Order-to-Cash app, started by the command of docs/deploy.md's walkthrough, runs
   with only those settings (and its own database): an order over the review threshold
   goes through the deployed bus, rule, ManualReview state machine, claim table and
   review queue, the app's own review consumer stores the review, a reviewer approves
   it in the ops console's API, and the saga completes it. Every AWS call the app made
   is one the deployed workers' policy allows, every call the console made one the
   console's policy allows;
3. the shell commands of docs/deploy.md §7 run verbatim (the aws CLI pointed at the
   emulator): they list the resources, put a test hand-off on the bus from a JSON file,
   take its review task and reject it;
4. ``stepsaga local diff --fail`` reports no differences;
5. ``stepsaga local destroy --keep-emulator`` removes the stack but retains the queues,
   DLQs, table and log groups (the stage's ``removalPolicy: retain``) with their data;
6. ``stepsaga local deploy`` of the same stage adopts them and completes;
7. ``stepsaga local destroy`` takes the stack down and stops the emulator.

A plain moto server is refused before anything is deployed to it.

Needs ``npm ci`` in infra/ (``make infra-deps``); skipped without it, except in CI.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.console import ConsoleSettings, create_app
from bridge.reviews import StepFunctions
from core_saga import AwsConfig

from .conftest import INFRA, ROOT

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(600)]

CDK = INFRA / "node_modules" / ".bin" / "cdk"
STAGE = "local"
STACK = f"stepsaga-{STAGE}"
PREFIX = f"{STACK}-"
QUEUES = ("order-saga", "payment", "inventory", "shipping", "orders", "review")

if not CDK.exists():
    reason = "the pinned CDK CLI is not installed: run `make infra-deps` (npm ci in infra/)"
    if os.environ.get("CI"):
        raise RuntimeError(reason)  # CI installs it: a missing CLI is a broken set-up
    pytestmark.append(pytest.mark.skip(reason=reason))


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that points at an emulator or AWS
    (the session's emulator sets MOTO_PORT), plus `extra`."""
    drop = ("STEPSAGA_", "AWS_", "MOTO_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


class Local:
    """``stepsaga local ...`` run as a user runs it, with the state in a test folder."""

    def __init__(self, state_dir: Path, recording: Path) -> None:
        self.state_dir = state_dir
        self.recording = recording
        self.log: list[str] = []

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(Path(sys.executable).parent / "stepsaga"), "local", *args,
                   "--state-dir", str(self.state_dir)]
        started = time.monotonic()
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=400, check=False,
            stdin=subprocess.DEVNULL, cwd=ROOT,
            env=_clean_env(STEPSAGA_LOCAL_VERBOSE="1",
                           MOTO_RECORDER_FILEPATH=str(self.recording)))
        self.log.append(f"$ stepsaga local {shlex.join(args)}  "
                        f"({time.monotonic() - started:.1f} s, exit {result.returncode})\n"
                        f"{result.stdout}\n{result.stderr}")
        if check:
            assert result.returncode == 0, self.log[-1]
        return result

    def endpoint(self) -> str:
        state = json.loads((self.state_dir / "emulator.json").read_text())
        endpoint: str = state["endpoint"]
        return endpoint


def parse_env(text: str) -> dict[str, str]:
    """The KEY=value lines `local deploy` prints."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        assert sep and key.isidentifier(), line
        [values[key]] = shlex.split(value) or [""]
    return values


def client(endpoint: str, service: str) -> Any:
    import boto3

    return boto3.session.Session().client(  # type: ignore[call-overload]
        service, endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing")


def outputs_of(endpoint: str) -> dict[str, str]:
    [stack] = client(endpoint, "cloudformation").describe_stacks(StackName=STACK)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def post(endpoint: str, path: str) -> bytes:
    request = urllib.request.Request(f"{endpoint}{path}", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        body: bytes = response.read()
        return body


# -- step 1: what was deployed ---------------------------------------------------------

def check_stack(endpoint: str, settings: dict[str, str]) -> dict[str, str]:
    """The deployed stage is what infra/stages/local.json asks for; its outputs."""
    outputs = outputs_of(endpoint)
    assert settings["STEPSAGA_QUEUE_PREFIX"] == outputs["QueuePrefix"] == PREFIX
    assert settings["STEPSAGA_EVENT_BUS"] == outputs["EventBusName"] == STACK
    assert settings["STEPSAGA_AWS_ENDPOINT_URL"] == endpoint
    key = outputs["EncryptionKeyArn"]  # local.json: encryptionKey create
    assert client(endpoint, "kms").describe_key(KeyId=key)["KeyMetadata"]["Enabled"]

    sqs = client(endpoint, "sqs")
    for name in [*QUEUES, "supervision-events-dlq"]:
        url = sqs.get_queue_url(QueueName=f"{PREFIX}{name}")["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
            "Attributes"]
        assert attributes["KmsMasterKeyId"] == key, name
        policy = json.loads(attributes["Policy"])
        assert any(s["Effect"] == "Deny" and s["Condition"] == {
            "Bool": {"aws:SecureTransport": "false"}} for s in policy["Statement"]), name
        if name in QUEUES:
            redrive = json.loads(attributes["RedrivePolicy"])
            assert redrive["deadLetterTargetArn"].endswith(f":{PREFIX}{name}-dlq"), name

    events, sfn = client(endpoint, "events"), client(endpoint, "stepfunctions")
    for workflow in ("ManualReview", "SlowShipping"):
        [rule] = [r for r in events.list_rules(EventBusName=STACK)["Rules"]
                  if r["Name"] == f"{STACK}-{workflow}"]
        assert json.loads(rule["EventPattern"]) == {
            "source": [{"prefix": "stepsaga."}],
            "detail-type": ["SupervisionRequested"], "detail": {"workflow": [workflow]}}
        [target] = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=STACK)[
            "Targets"]
        assert target["Arn"] == outputs[f"{workflow}StateMachineArn"]
        machine = sfn.describe_state_machine(
            stateMachineArn=outputs[f"{workflow}StateMachineArn"])
        assert machine["loggingConfiguration"]["level"] == "ALL"
        assert machine["loggingConfiguration"]["includeExecutionData"] is True
        assert machine["tracingConfiguration"] == {"enabled": True}
    groups = client(endpoint, "logs").describe_log_groups(
        logGroupNamePrefix=f"/aws/vendedlogs/states/{STACK}-")["logGroups"]
    assert {g["logGroupName"]: (g["retentionInDays"], g["kmsKeyId"]) for g in groups} == {
        f"/aws/vendedlogs/states/{STACK}-{w}": (7, key)
        for w in ("ManualReview", "SlowShipping")}
    table = client(endpoint, "dynamodb").describe_table(
        TableName=outputs["ClaimTableName"])["Table"]
    assert table["SSEDescription"]["KMSMasterKeyArn"] == key

    iam = client(endpoint, "iam")
    role = outputs["WorkerRoleArn"].rsplit("/", 1)[-1]
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [outputs["WorkersPolicyArn"]]
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert "aws:SourceArn" in trust["Statement"][0]["Condition"]["ArnLike"]

    registry = json.loads(urllib.request.urlopen(  # the emulator's view of the registry
        f"{endpoint}/moto-api/stepsaga/schemas", timeout=10).read())[STACK]
    assert set(registry["schemas"]) == {
        f"stepsaga.bridge@{n}" for n in ("SupervisionRequested", "SupervisionStarted",
                                         "SupervisionCompleted", "ReviewTask")}
    return outputs


# -- step 2: a supervised order through the deployed resources -------------------------

@pytest.fixture
def app_port() -> int:
    from core_saga.emulator import free_port

    return free_port()


def documented_app_command() -> list[str]:
    """The command docs/deploy.md's walkthrough starts the app with, after sourcing the
    printed settings (``python -m examples.order_to_cash …``)."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    [block] = [b for b in re.findall(r"```\n(.*?)```", text, re.S)
               if b.startswith("set -a; . .stepsaga/local.env; set +a")]
    [line] = [line for line in block.splitlines() if line.startswith("python -m ")]
    return shlex.split(line, comments=True)


def start_worker(settings: dict[str, str], database: Path, port: int,
                 log: Path) -> subprocess.Popen[bytes]:
    """The Order-to-Cash app as the walkthrough starts it, configured by the printed
    settings only (plus its database, its order API's port, and a short long-poll so
    that it stops quickly)."""
    env = _clean_env(**settings, PYTHONPATH=str(ROOT),
                     STEPSAGA_DATABASE_URL=f"sqlite+aiosqlite:///{database}",
                     STEPSAGA_WAIT_TIME_SECONDS="1")
    python, *args = documented_app_command()
    assert python == "python" and args[:2] == ["-m", "examples.order_to_cash"], args
    return subprocess.Popen(
        [sys.executable, *args, "--http-port", str(port)], cwd=ROOT, env=env,
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stop_worker(process: subprocess.Popen[bytes], log: Path) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"the app did not stop on SIGTERM:\n{log.read_text()}") from None
    assert code == 0, log.read_text()


async def submit_big_order(port: int, log: Path, *, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        while True:
            try:
                response = await http.post("/orders", json={
                    "customerId": "c-1", "currency": "EUR", "amount": "1500.00",
                    "lines": [{"sku": "LAMP-1", "quantity": 1, "unitPrice": "1500.00"}]})
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError(log.read_text()) from None
                await asyncio.sleep(0.2)
    assert response.status_code == 202, response.text
    order_id: str = response.json()["orderId"]
    return order_id


CONSOLE_AGENT = "stepsaga-test-console"
"""The user-agent suffix of the console's calls in the recording (the app's are
aiobotocore's plain; the test's own and the state machines' are boto3's)."""


class ConsoleStepFunctions(StepFunctions):
    """The console's Step Functions calls, marked in the recording by their user agent."""

    def _client(self) -> Any:
        from botocore.config import Config

        return self._session.create_client("stepfunctions", **self.config.client_kwargs(),
                                           config=Config(user_agent_extra=CONSOLE_AGENT))


async def review_in_console(endpoint: str, database: Path, order_id: str, log: Path, *,
                            timeout: float = 60) -> dict[str, Any]:
    """Act as the reviewer: find the order's review in the ops console's API (the app's
    review consumer stored it) and approve it there; the review."""
    app = create_app(ConsoleSettings(
        database_url=f"sqlite+aiosqlite:///{database}", aws_region="us-east-1",
        aws_endpoint_url=endpoint, console_sagas=[],
        console_tokens={"reviewer-token-1": {"name": "ann", "roles": ["approver"]}}),
        sfn=ConsoleStepFunctions(AwsConfig(region="us-east-1", endpoint_url=endpoint)))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://console.test",
                                     headers={"Authorization": "Bearer reviewer-token-1"}
                                     ) as console:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                listed = await console.get("/api/reviews")
                assert listed.status_code == 200, listed.text
                found = [r for r in listed.json()["reviews"]
                         if r["correlationId"] == order_id]
                if found:
                    review: dict[str, Any] = found[0]
                    decided = await console.post(f"/api/reviews/{review['id']}/approve",
                                                 json={"comment": "deploy check"})
                    assert decided.status_code == 200, decided.text
                    assert decided.json()["changed"] is True
                    return review
                await asyncio.sleep(0.5)
    finally:
        await app.state.console.close()
    raise AssertionError(f"no review for {order_id} in the console:\n"
                         f"{log.read_text()[-4000:]}")


async def order_status(port: int, order_id: str, log: Path, *, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        while time.monotonic() < deadline:
            view = (await http.get(f"/orders/{order_id}")).json()
            if view["status"] not in ("Submitted",):
                status: str = view["status"]
                return status
            await asyncio.sleep(0.2)
    raise AssertionError(f"order {order_id} did not end:\n{log.read_text()[-4000:]}")


# -- the worker's calls against the deployed policy -------------------------------------

def worker_calls(recording: str, *, console: bool = False
                 ) -> list[tuple[str, list[str], dict[str, Any]]]:
    """(action, resources, request) of every call the worker made (aiobotocore's user
    agent; the test's own calls and the state machines' are boto3's), or with `console`
    the console's (:data:`CONSOLE_AGENT`)."""
    calls = []
    for line in recording.splitlines():
        entry = json.loads(line)
        headers = {k.lower(): v for k, v in entry["headers"].items()}
        target = headers.get("x-amz-target")
        agent = headers.get("user-agent", "")
        if "aiobotocore" not in agent or not target or (CONSOLE_AGENT in agent) != console:
            continue
        body = base64.b64decode(entry["body"]) if entry["body_encoded"] else entry["body"]
        request = json.loads(body or "{}")
        prefix, _, operation = target.partition(".")
        service = {"AmazonSQS": "sqs", "AWSEvents": "events",
                   "AWSStepFunctions": "states"}[prefix]
        calls.append((f"{service}:{operation}", _resources(service, request), request))
    return calls


def _resources(service: str, request: dict[str, Any]) -> list[str]:
    account = "123456789012"
    if service == "sqs":
        name = request.get("QueueName") or request["QueueUrl"].rsplit("/", 1)[-1]
        return [f"arn:aws:sqs:us-east-1:{account}:{name}"]
    if service == "events":
        return [f"arn:aws:events:us-east-1:{account}:event-bus/{e['EventBusName']}"
                for e in request["Entries"]]
    return []  # a task token names its execution, not a resource of the request


def allowed(statements: list[dict[str, Any]], action: str, resources: list[str],
            request: dict[str, Any]) -> bool:
    def listed(value: Any) -> list[str]:
        return value if isinstance(value, list) else [value]

    for statement in statements:
        if statement["Effect"] != "Allow" or not any(
                fnmatch.fnmatchcase(action, a) for a in listed(statement["Action"])):
            continue
        arns = listed(statement["Resource"])
        if resources and not all(any(fnmatch.fnmatchcase(r, a) for a in arns)
                                 for r in resources):
            continue
        sources = statement.get("Condition", {}).get("StringLike", {}).get("events:source")
        if sources and not all(fnmatch.fnmatchcase(e["Source"], sources)
                               for e in request.get("Entries", [])):
            continue
        return True
    return False


def policy_statements(endpoint: str, arn: str) -> list[dict[str, Any]]:
    iam = client(endpoint, "iam")
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"][
        "Document"]
    document = json.loads(document) if isinstance(document, str) else document
    statements: list[dict[str, Any]] = document["Statement"]
    return statements


def check_worker_permissions(endpoint: str, outputs: dict[str, str], recording: str
                             ) -> None:
    statements = policy_statements(endpoint, outputs["WorkersPolicyArn"])
    calls = worker_calls(recording)
    made = {action for action, _, _ in calls}
    # the order took every kind of call a worker makes
    assert {"sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:SendMessageBatch",
            "sqs:DeleteMessageBatch", "events:PutEvents", "states:SendTaskSuccess"} <= made
    # the app's own review consumer read the review queue
    assert any(a == "sqs:ReceiveMessage" and r == [
        f"arn:aws:sqs:us-east-1:123456789012:{PREFIX}review"] for a, r, _ in calls)
    denied = sorted({(a, tuple(r)) for a, r, request in calls
                     if not allowed(statements, _iam_action(a), r, request)})
    assert not denied, f"the workers' policy lacks: {denied}"
    console_calls = worker_calls(recording, console=True)
    assert {a for a, _, _ in console_calls} >= {"states:SendTaskSuccess"}
    statements = policy_statements(endpoint, outputs["ConsolePolicyArn"])
    denied = sorted({(a, tuple(r)) for a, r, request in console_calls
                     if not allowed(statements, _iam_action(a), r, request)})
    assert not denied, f"the console's policy lacks: {denied}"


def _iam_action(operation: str) -> str:
    """The IAM action of an API operation (the batch forms need the single one)."""
    return operation.removesuffix("Batch") if operation.startswith("sqs:") else operation


# -- docs/deploy.md §7, verbatim --------------------------------------------------------

def doc_commands() -> str:
    """The ```bash blocks of docs/deploy.md's "7. Check the deployment"."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    start = text.index("## 7. Check the deployment")
    section = text[start:text.index("\n## ", start + 1)]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert len(blocks) == 3, blocks
    return "\n".join(blocks)


def run_doc_commands(endpoint: str, workdir: Path) -> str:
    """Run them in one shell, as someone pasting them would, with the aws CLI of this
    environment pointed at the emulator; their output."""
    empty = workdir / "no-aws-config"
    empty.write_text("")
    # The aws CLI v1 sends SQS calls in us-east-1 to queue.amazonaws.com whatever
    # AWS_ENDPOINT_URL says (its SSL common-name customization wins over the variable;
    # only --endpoint-url beats it), so `aws` here is a shim adding that flag, as
    # awscli-local does. The commands themselves run as written.
    shim = workdir / "bin"
    shim.mkdir()
    (shim / "aws").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m awscli '
                              '--endpoint-url "$AWS_ENDPOINT_URL" "$@"\n')
    (shim / "aws").chmod(0o755)
    env = _clean_env(
        STAGE=STAGE, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(empty), AWS_SHARED_CREDENTIALS_FILE=str(empty),
        AWS_EC2_METADATA_DISABLED="true", AWS_PAGER="",
        PATH=f"{shim}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", doc_commands()],
                            cwd=workdir, env=env, capture_output=True, text=True,
                            timeout=180, check=False, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def check_doc_output(output: str) -> None:
    lines = output.split()
    assert {f"{STACK}-ManualReview", f"{STACK}-SlowShipping"} <= set(lines), output
    assert "$.detail" in lines, output
    assert "0" in lines, output  # FailedEntryCount
    assert lines[-1] == "RUNNING", output  # delivering the rejection to the saga queue


# -- the test ----------------------------------------------------------------------------

@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    runner = Local(tmp_path / "state", tmp_path / "recording.jsonl")
    try:
        yield runner
    except BaseException:
        print("\n\n".join(runner.log))
        raise
    finally:
        sys.path.insert(0, str(INFRA))
        from stepsaga_infra.local import stop_emulator

        stop_emulator(runner.state_dir)  # whatever happened, no server is left behind


def test_local_deploy_runs_an_order_then_diffs_clean_destroys_and_redeploys(
        local: Local, tmp_path: Path, app_port: int) -> None:
    deployed = local("deploy", "--port", "0", "--env-file", str(tmp_path / "local.env"))
    settings = parse_env(deployed.stdout)
    assert parse_env((tmp_path / "local.env").read_text()) == settings
    endpoint = local.endpoint()
    outputs = check_stack(endpoint, settings)
    assert local("settings").stdout == deployed.stdout

    post(endpoint, "/moto-api/recorder/start-recording")
    log = tmp_path / "worker.log"
    worker = start_worker(settings, tmp_path / "orders.db", app_port, log)
    try:
        order_id = asyncio.run(submit_big_order(app_port, log))
        review = asyncio.run(review_in_console(endpoint, tmp_path / "orders.db", order_id,
                                               log))
        assert asyncio.run(order_status(app_port, order_id, log)) == "Completed"
    finally:
        stop_worker(worker, log)
    post(endpoint, "/moto-api/recorder/stop-recording")
    check_worker_permissions(endpoint, outputs, local.recording.read_text())
    claims = client(endpoint, "dynamodb")
    claim = {"handoffId": {"S": review["handoffId"]}}
    assert claims.get_item(TableName=outputs["ClaimTableName"], Key=claim)["Item"]

    docs = tmp_path / "docs-run"
    docs.mkdir()
    check_doc_output(run_doc_commands(endpoint, docs))
    assert (docs / "deploy-check.json").exists()

    diff = local("diff", "--fail")
    assert "There were no differences" in diff.stdout

    sqs = client(endpoint, "sqs")
    sqs.send_message(QueueUrl=outputs["PaymentDlqUrl"], MessageBody="kept through destroy")
    local("destroy", "--keep-emulator")
    cf = client(endpoint, "cloudformation")
    assert STACK not in [s["StackName"] for s in cf.list_stacks(
        StackStatusFilter=["CREATE_COMPLETE", "UPDATE_COMPLETE"])["StackSummaries"]]
    # retained, with their data: every queue and DLQ, the table, the log groups
    assert sorted(u.rsplit("/", 1)[-1] for u in sqs.list_queues(
        QueueNamePrefix=PREFIX)["QueueUrls"]) == sorted([
            *(f"{PREFIX}{n}{s}" for n in QUEUES for s in ("", "-dlq")),
            f"{PREFIX}supervision-events-dlq"])
    assert claims.get_item(TableName=outputs["ClaimTableName"], Key=claim)["Item"]

    redeployed = local("deploy")
    assert parse_env(redeployed.stdout) == settings  # same emulator, same names
    again = outputs_of(endpoint)
    assert again["PaymentDlqUrl"] == outputs["PaymentDlqUrl"]
    assert claims.get_item(TableName=again["ClaimTableName"], Key=claim)["Item"]
    kept = sqs.receive_message(QueueUrl=again["PaymentDlqUrl"], WaitTimeSeconds=1)
    assert kept["Messages"][0]["Body"] == "kept through destroy"

    local("destroy")
    assert not (local.state_dir / "emulator.json").exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2)


def test_a_plain_moto_is_refused_before_anything_is_deployed(local: Local,
                                                             plain_moto: str) -> None:
    refused = local("deploy", "--endpoint", plain_moto, check=False)
    assert refused.returncode == 1
    assert "refusing to deploy" in refused.stderr
    assert "not the stepsaga emulator" in refused.stderr
    stacks = client(plain_moto, "cloudformation").list_stacks()["StackSummaries"]
    assert stacks == []  # not even bootstrapped
