"""Deploy the stack to the local emulator in one command, and take it down again.

``stepsaga local deploy`` (``make deploy-local``):

1. finds the emulator: ``--endpoint`` / ``STEPSAGA_AWS_ENDPOINT_URL``, else the one an
   earlier ``local deploy`` started (its state file), else starts one — the project's
   launcher (``python -m core_saga.emulator._server``), detached, with every extension
   and Step Functions execution on;
2. refuses a server without the extensions the deploy needs (a plain moto answers the
   CDK CLI and then creates nothing): it asks ``/moto-api/stepsaga`` first;
3. runs the pinned CDK CLI with ``AWS_ENDPOINT_URL`` pointing there and fake
   credentials: ``cdk bootstrap`` (once per emulator), then ``cdk deploy
   --import-existing-resources`` of ``stepsaga-<stage>`` with ``infra/stages/<stage>.json``;
4. checks the result with boto3 (the CLI can report success for a change set the
   emulator failed): every resource of the template exists, the outputs are there;
5. prints the worker settings (``STEPSAGA_*``) made from the stack's outputs.

``stepsaga local destroy`` runs ``cdk destroy --force``, checks the stack is gone and
stops the emulator the deploy started (unless ``--keep-emulator``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

INFRA_DIR: Final = Path(__file__).resolve().parents[1]
"""``infra/``: cdk.json, app.py, stages/ and the pinned CLI in node_modules."""
CDK_CLI: Final = INFRA_DIR / "node_modules" / ".bin" / "cdk"
DEFAULT_STATE_DIR: Final = INFRA_DIR.parent / ".stepsaga" / "local"
"""Where ``local deploy`` remembers the emulator it started (``emulator.json``)."""
ACCOUNT: Final = "123456789012"
"""The emulator's account (moto's default)."""
REGION: Final = "us-east-1"
FAKE_KEY: Final = "testing"
DEFAULT_STAGE: Final = "local"
DEFAULT_PORT: Final = 5000
REQUIRED_EXTENSIONS: Final[tuple[str, ...]] = (
    "events_sfn_target", "cfn_event_bus_ref", "cfn_state_machines",
    "cfn_change_set_execution", "cfn_missing_change_sets", "cfn_ssm_previous_values",
    "cfn_updates_without_support", "cfn_sqs_queue_policy", "cfn_template_url",
    "cfn_import_existing", "cfn_event_schemas", "cfn_kms_key",
    "cfn_iam_managed_policies", "cfn_log_group_key",
    "cfn_dynamodb_sse")
"""What the deploy needs of the emulator (see core_saga/emulator/_extensions)."""
BOOTSTRAP_VERSION_PARAMETER: Final = "/cdk-bootstrap/hnb659fds/version"


class LocalDeployError(RuntimeError):
    """A step of the local deploy failed; the message says which and why."""


@dataclass
class LocalTarget:
    """An emulator to deploy to, and how this run reached it."""

    endpoint_url: str
    started: bool = False
    """True when this command started the emulator (and so it is in the state file)."""
    pid: int | None = None
    log_file: Path | None = None

    def client(self, service: str) -> Any:
        """A boto3 client for `service` on the emulator, with fake credentials."""
        import boto3

        return boto3.session.Session().client(  # type: ignore[call-overload]
            service, endpoint_url=self.endpoint_url, region_name=REGION,
            aws_access_key_id=FAKE_KEY, aws_secret_access_key=FAKE_KEY)


@dataclass
class CdkRun:
    """The pinned CDK CLI pointed at an emulator (fake credentials only)."""

    target: LocalTarget
    workdir: Path
    log: list[str] = field(default_factory=list)
    timeout: float = 300.0

    def env(self) -> dict[str, str]:
        """The CLI's environment: every SDK call goes to the emulator."""
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "NODE_OPTIONS")
        env = {k: v for k, v in os.environ.items() if k in keep}
        empty = self.workdir / "no-aws-config"
        empty.write_text("")
        env.update({
            "AWS_ENDPOINT_URL": self.target.endpoint_url,
            "AWS_ACCESS_KEY_ID": FAKE_KEY, "AWS_SECRET_ACCESS_KEY": FAKE_KEY,
            "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
            # no profile, no instance metadata: nothing can reach a real account
            "AWS_CONFIG_FILE": str(empty), "AWS_SHARED_CREDENTIALS_FILE": str(empty),
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "localhost,127.0.0.1", "no_proxy": "localhost,127.0.0.1",
            "CDK_DISABLE_VERSION_CHECK": "1", "CDK_DISABLE_CLI_TELEMETRY": "1",
            "NODE_NO_WARNINGS": "1", "CI": "true", "FORCE_COLOR": "0",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "18,19,20,21",
            "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
        })
        return env

    def __call__(self, *args: str, stage: str, check: bool = True,
                 app: Path | None = None, output: Path | None = None
                 ) -> subprocess.CompletedProcess[str]:
        """``cdk ARGS -c stepsaga:stage=STAGE`` in infra/: the app run by this
        interpreter, or `app`, a cloud assembly synthesized before; the assembly goes
        to `output` (default: this run's directory)."""
        if not CDK_CLI.exists():
            raise LocalDeployError(
                f"the pinned CDK CLI is missing ({CDK_CLI}): run `make infra-deps`")
        command = [str(CDK_CLI), *args,
                   "--app", str(app) if app else f"{shlex.quote(sys.executable)} app.py",
                   "--context", f"stepsaga:stage={stage}"]
        if app is None:
            command += ["--output", str(output or self.workdir / "cdk.out")]
        started = time.monotonic()
        try:
            result = subprocess.run(command, cwd=INFRA_DIR, env=self.env(),
                                    capture_output=True, text=True, timeout=self.timeout,
                                    check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise LocalDeployError(f"`cdk {' '.join(args)}` did not finish in "
                                   f"{self.timeout:.0f} s") from None
        self.log.append(f"$ cdk {' '.join(args)}  ({time.monotonic() - started:.1f} s, "
                        f"exit {result.returncode})\n{result.stdout}\n{result.stderr}")
        if check and result.returncode != 0:
            said = _tail(result.stderr or result.stdout)
            raise LocalDeployError(f"`cdk {' '.join(args)}` failed (exit "
                                   f"{result.returncode}):\n{said}")
        return result


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# -- the emulator ----------------------------------------------------------------------

def state_file(state_dir: Path) -> Path:
    """Where the emulator started by ``local deploy`` is remembered."""
    return state_dir / "emulator.json"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remembered_emulator(state_dir: Path) -> LocalTarget | None:
    """The emulator an earlier ``local deploy`` started, if it still runs and answers."""
    from core_saga.emulator import server_manifest

    path = state_file(state_dir)
    try:
        state = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    pid, endpoint = state.get("pid"), state.get("endpoint")
    if not isinstance(pid, int) or not isinstance(endpoint, str) or not _pid_alive(pid):
        path.unlink(missing_ok=True)
        return None
    try:
        server_manifest(endpoint, timeout=2)
    except OSError:
        return None
    log = state.get("log")
    return LocalTarget(endpoint, started=True, pid=pid,
                       log_file=Path(log) if isinstance(log, str) else None)


def start_emulator(state_dir: Path, port: int, *, timeout: float = 60.0) -> LocalTarget:
    """Start the project's emulator on 127.0.0.1:`port` (0: a free port), detached so it
    outlives this command, and remember it in the state file."""
    from core_saga.emulator import free_port, server_manifest

    port = port or free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with contextlib.suppress(OSError):
        server_manifest(endpoint, timeout=1)
        raise LocalDeployError(
            f"something already answers on {endpoint}: pass --endpoint {endpoint} to use "
            "it (it must be the stepsaga emulator), or --port for another port")
    state_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir / f"emulator-{port}.log"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": FAKE_KEY, "AWS_SECRET_ACCESS_KEY": FAKE_KEY,
           "AWS_DEFAULT_REGION": REGION, "MOTO_PORT": str(port),
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "core_saga.emulator._server", "--port", str(port),
             "--parent", "0"],
            env=env, stdout=output, stderr=output, stdin=subprocess.DEVNULL,
            start_new_session=True)  # a terminal's Ctrl-C does not reach it
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise LocalDeployError(f"the emulator exited at start (code "
                                   f"{process.returncode}); its log:\n"
                                   f"{_tail(log.read_text(errors='replace'))}")
        try:
            server_manifest(endpoint, timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise LocalDeployError(f"the emulator did not answer on {endpoint} in "
                                       f"{timeout:.0f} s; its log: {log}") from None
            time.sleep(0.1)
    state_file(state_dir).write_text(json.dumps(
        {"pid": process.pid, "endpoint": endpoint, "log": str(log)}))
    return LocalTarget(endpoint, started=True, pid=process.pid, log_file=log)


def stop_emulator(state_dir: Path) -> bool:
    """Stop the emulator ``local deploy`` started (SIGTERM, then SIGKILL); False when
    there was none."""
    path = state_file(state_dir)
    try:
        state = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return False
    pid = state.get("pid")
    path.unlink(missing_ok=True)
    if not isinstance(pid, int) or not _pid_alive(pid):
        return False
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it if this process started it
            if not _pid_alive(pid):
                return True
            time.sleep(0.05)
    return not _pid_alive(pid)


def find_target(*, endpoint: str | None, state_dir: Path, port: int,
                start: bool = True) -> LocalTarget:
    """The emulator to use (see the module docstring), checked for the extensions the
    deploy needs; LocalDeployError naming what is wrong otherwise."""
    from core_saga.emulator import EmulatorMismatchError, require_extensions

    target = (LocalTarget(endpoint.rstrip("/")) if endpoint
              else remembered_emulator(state_dir))
    if target is None:
        if not start:
            raise LocalDeployError("no local emulator: run `stepsaga local deploy` first "
                                   "(or pass --endpoint)")
        target = start_emulator(state_dir, port)
    try:
        require_extensions(target.endpoint_url, REQUIRED_EXTENSIONS)
    except EmulatorMismatchError as exc:
        raise LocalDeployError(f"refusing to deploy: {exc}") from None
    except OSError as exc:
        raise LocalDeployError(f"nothing answers at {target.endpoint_url}: {exc}") from None
    return target


# -- deploy, check, settings, destroy ----------------------------------------------------

def stack_name(stage: str) -> str:
    """``stepsaga-<stage>``."""
    return f"stepsaga-{stage}"


def _bootstrapped(target: LocalTarget) -> bool:
    from botocore.exceptions import ClientError

    try:
        [stack] = target.client("cloudformation").describe_stacks(
            StackName="CDKToolkit")["Stacks"]
        target.client("ssm").get_parameter(Name=BOOTSTRAP_VERSION_PARAMETER)
    except ClientError:
        return False
    return str(stack["StackStatus"]).endswith("_COMPLETE")


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="stepsaga-local-") as directory:
        yield Path(directory)


def assembly_dir(state_dir: Path, stage: str) -> Path:
    """Where ``local deploy`` keeps the cloud assembly it deployed (``local destroy``
    destroys from it without synthesizing again)."""
    return state_dir / f"cdk.out-{stage}"


def deploy(target: LocalTarget, stage: str, *, state_dir: Path,
           log: list[str] | None = None) -> dict[str, str]:
    """Bootstrap (once) and deploy `stage`, check it, and return the stack's outputs."""
    assembly = assembly_dir(state_dir, stage)
    with _workdir() as workdir:
        cdk = CdkRun(target, workdir, log if log is not None else [])
        if not _bootstrapped(target):
            cdk("bootstrap", f"aws://{ACCOUNT}/{REGION}", stage=stage)
        shutil.rmtree(assembly, ignore_errors=True)
        cdk("deploy", stack_name(stage), "--require-approval", "never",
            "--import-existing-resources", stage=stage, output=assembly)
    template = json.loads((assembly / f"{stack_name(stage)}.template.json").read_text())
    return check_deployed(target, stage, template)


def check_deployed(target: LocalTarget, stage: str, template: Mapping[str, Any]
                   ) -> dict[str, str]:
    """The outputs of `stage`'s stack after checking that it completed, that every
    resource of `template` exists with a physical id, and that every output is there."""
    from botocore.exceptions import ClientError

    cf = target.client("cloudformation")
    name = stack_name(stage)
    try:
        [stack] = cf.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        raise LocalDeployError(f"{name} was not created: {exc}") from None
    status = str(stack["StackStatus"])
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise LocalDeployError(f"{name} is {status}: {stack.get('StackStatusReason', '')}")
    deployed = {r["LogicalResourceId"]: r for r in cf.list_stack_resources(
        StackName=name)["StackResourceSummaries"]}
    missing = sorted(set(template["Resources"]) - set(deployed))
    broken = sorted(k for k, r in deployed.items()
                    if not r.get("PhysicalResourceId")
                    or not str(r.get("ResourceStatus", "")).endswith("_COMPLETE"))
    if missing or broken:
        raise LocalDeployError(f"{name} reports {status} but the emulator did not make "
                               f"{', '.join(missing + broken)}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    absent = sorted(set(template.get("Outputs", {})) - set(outputs))
    if absent:
        raise LocalDeployError(f"{name} has no output(s) {', '.join(absent)}")
    return outputs


def stack_outputs(target: LocalTarget, stage: str) -> dict[str, str]:
    """The outputs of the deployed `stage` (LocalDeployError when it is not deployed)."""
    from botocore.exceptions import ClientError

    try:
        [stack] = target.client("cloudformation").describe_stacks(
            StackName=stack_name(stage))["Stacks"]
    except ClientError:
        raise LocalDeployError(f"{stack_name(stage)} is not deployed on "
                               f"{target.endpoint_url}") from None
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def worker_settings(target: LocalTarget, outputs: Mapping[str, str], stage: str
                    ) -> dict[str, str]:
    """The environment of a worker on this deployment: ``STEPSAGA_*`` from the outputs
    (and the stage's settings file), plus the emulator's fake credentials."""
    from .settings import InfraSettings

    settings = InfraSettings.from_context({"stepsaga:stage": stage}.get,
                                          ["stepsaga:stage"])
    return {
        "STEPSAGA_AWS_ENDPOINT_URL": target.endpoint_url,
        "STEPSAGA_AWS_REGION": REGION,
        "STEPSAGA_QUEUE_PREFIX": outputs["QueuePrefix"],
        "STEPSAGA_EVENT_BUS": outputs["EventBusName"],
        # STEPSAGA_MAX_DELIVERIES keeps the workers' default (5): the queues'
        # maxReceiveCount leaves it the dead-letter margin the workers check at start.
        "STEPSAGA_VISIBILITY_TIMEOUT": str(settings.visibility_timeout_seconds),
        # the emulator takes any key; on AWS the workers' role gives credentials
        "AWS_ACCESS_KEY_ID": FAKE_KEY,
        "AWS_SECRET_ACCESS_KEY": FAKE_KEY,
        "AWS_DEFAULT_REGION": REGION,
    }


def render_env(values: Mapping[str, str]) -> str:
    """``KEY=value`` lines (a dotenv file; ``set -a; . FILE; set +a`` loads it)."""
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())


def diff(target: LocalTarget, stage: str, *, log: list[str] | None = None) -> str:
    """``cdk diff`` of `stage` against the emulator; its report (empty of changes when
    the deployment matches the code and the stage file)."""
    with _workdir() as workdir:
        cdk = CdkRun(target, workdir, log if log is not None else [])
        result = cdk("diff", stack_name(stage), stage=stage)
    return result.stdout + result.stderr


def destroy(target: LocalTarget, stage: str, *, state_dir: Path,
            log: list[str] | None = None) -> None:
    """``cdk destroy --force`` of `stage` (from the assembly ``local deploy`` kept, when
    there is one), then check the stack is gone."""
    from botocore.exceptions import ClientError

    assembly = assembly_dir(state_dir, stage)
    kept = (assembly / f"{stack_name(stage)}.template.json").exists()
    with _workdir() as workdir:
        cdk = CdkRun(target, workdir, log if log is not None else [])
        cdk("destroy", stack_name(stage), "--force", stage=stage,
            app=assembly if kept else None)
    shutil.rmtree(assembly, ignore_errors=True)
    try:
        [stack] = target.client("cloudformation").describe_stacks(
            StackName=stack_name(stage))["Stacks"]
    except ClientError:
        return
    if stack["StackStatus"] != "DELETE_COMPLETE":
        raise LocalDeployError(f"{stack_name(stage)} is still {stack['StackStatus']}")
