"""``stepsaga local deploy | diff | settings | destroy``: the stack on the local emulator
(see :mod:`stepsaga_infra.local` and docs/deploy.md). Registered through the
``stepsaga.cli`` entry-point group; nothing here loads the CDK until a command runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

errors = Console(stderr=True, soft_wrap=True)

local_app = typer.Typer(
    name="local", no_args_is_help=True,
    help="Deploy the CDK stack to the local AWS emulator (started for you), print the "
         "workers' settings, diff and destroy it.")

Stage = Annotated[str, typer.Option(help="The stage: infra/stages/<stage>.json")]
Endpoint = Annotated[str | None, typer.Option(
    envvar="STEPSAGA_AWS_ENDPOINT_URL",
    help="Use the emulator already running there (default: the one `local deploy` "
         "started, else start one)")]
StateDir = Annotated[Path | None, typer.Option(
    envvar="STEPSAGA_LOCAL_STATE_DIR", file_okay=False,
    help="Where the started emulator is remembered")]


def _default_state_dir() -> Path:
    from .local import DEFAULT_STATE_DIR

    return DEFAULT_STATE_DIR


def _fail(message: str, log: list[str] | None = None) -> typer.Exit:
    if log and os.environ.get("STEPSAGA_LOCAL_VERBOSE"):
        errors.print("\n\n".join(log), markup=False, highlight=False)
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=1)


def _check_stage(stage: str) -> None:
    from .settings import InfraSettings, SettingsError

    try:
        InfraSettings.from_context({"stepsaga:stage": stage}.get, ["stepsaga:stage"])
    except SettingsError as exc:
        raise typer.BadParameter(str(exc), param_hint="--stage") from None


@local_app.command("deploy", short_help="Start the emulator if needed, deploy "
                   "stepsaga-STAGE, print the workers' settings.")
def deploy_command(
    stage: Stage = "local",
    endpoint: Endpoint = None,
    port: Annotated[int, typer.Option(min=0, max=65535,
                                      help="Port of an emulator started here (0: free)")
                    ] = 5000,
    env_file: Annotated[Path | None, typer.Option(
        dir_okay=False, help="Also write the settings to this file")] = None,
    state_dir: StateDir = None,
) -> None:
    """Start the emulator if needed, bootstrap and deploy stepsaga-STAGE, check every
    resource, and print the workers' settings (KEY=value lines on stdout)."""
    from .local import LocalDeployError, deploy, find_target, render_env, worker_settings

    _check_stage(stage)
    state = state_dir or _default_state_dir()
    log: list[str] = []
    try:
        target = find_target(endpoint=endpoint, state_dir=state, port=port)
        errors.print(f"emulator: {target.endpoint_url}"
                     + (f" (started, pid {target.pid}, log {target.log_file})"
                        if target.started else ""), highlight=False)
        errors.print(f"deploying stepsaga-{stage} (infra/stages/{stage}.json)…")
        outputs = deploy(target, stage, state_dir=state, log=log)
    except LocalDeployError as exc:
        raise _fail(str(exc), log) from None
    text = render_env(worker_settings(target, outputs, stage))
    if env_file is not None:
        env_file.parent.mkdir(parents=True, exist_ok=True)
        env_file.write_text(text)
    errors.print(f"stepsaga-{stage} deployed: {len(outputs)} outputs; the workers' "
                 "settings follow", highlight=False)
    typer.echo(text, nl=False)


@local_app.command("settings")
def settings_command(stage: Stage = "local", endpoint: Endpoint = None,
                     state_dir: StateDir = None) -> None:
    """Print the workers' settings of the deployed stepsaga-STAGE again."""
    from .local import LocalDeployError, find_target, render_env, stack_outputs, worker_settings

    _check_stage(stage)
    state = state_dir or _default_state_dir()
    try:
        target = find_target(endpoint=endpoint, state_dir=state, port=0, start=False)
        outputs = stack_outputs(target, stage)
    except LocalDeployError as exc:
        raise _fail(str(exc)) from None
    typer.echo(render_env(worker_settings(target, outputs, stage)), nl=False)


@local_app.command("diff")
def diff_command(
    stage: Stage = "local", endpoint: Endpoint = None, state_dir: StateDir = None,
    fail: Annotated[bool, typer.Option(help="Exit 1 when there are differences")] = False,
) -> None:
    """`cdk diff` of stepsaga-STAGE against what the emulator holds."""
    from .local import LocalDeployError, diff, find_target

    _check_stage(stage)
    state = state_dir or _default_state_dir()
    log: list[str] = []
    try:
        target = find_target(endpoint=endpoint, state_dir=state, port=0, start=False)
        report = diff(target, stage, log=log)
    except LocalDeployError as exc:
        raise _fail(str(exc), log) from None
    typer.echo(report.strip())
    if fail and "There were no differences" not in report:
        raise typer.Exit(code=1)


@local_app.command("destroy", short_help="Destroy stepsaga-STAGE, then stop the "
                   "emulator `local deploy` started.")
def destroy_command(
    stage: Stage = "local", endpoint: Endpoint = None, state_dir: StateDir = None,
    keep_emulator: Annotated[bool, typer.Option(
        help="Leave the emulator `local deploy` started running")] = False,
) -> None:
    """`cdk destroy --force` stepsaga-STAGE, then stop the emulator `local deploy`
    started (resources the stage retains stay until then)."""
    from .local import LocalDeployError, destroy, find_target, stop_emulator

    _check_stage(stage)
    state = state_dir or _default_state_dir()
    log: list[str] = []
    try:
        target = find_target(endpoint=endpoint, state_dir=state, port=0, start=False)
        destroy(target, stage, state_dir=state, log=log)
    except LocalDeployError as exc:
        raise _fail(str(exc), log) from None
    errors.print(f"stepsaga-{stage} destroyed", highlight=False)
    if target.started and not keep_emulator and stop_emulator(state):
        errors.print(f"emulator at {target.endpoint_url} stopped", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``local`` to the ``stepsaga`` app."""
    app.add_typer(local_app, name="local")
