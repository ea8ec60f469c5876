"""Build the CDK app: settings from context, the stack, and the cdk-nag checks.

``infra/app.py`` calls :func:`build_app`; the tests call it too, with the context they
want, and synthesize in memory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Aspects, Environment
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

from .settings import InfraSettings
from .stack import StepsagaStack


def stack_name(settings: InfraSettings) -> str:
    """``stepsaga-<stage>``: the CloudFormation stack of one stage."""
    return settings.name_prefix


def environment() -> Environment | None:
    """The account and region the CLI resolved (``CDK_DEFAULT_*``); None keeps the
    stack environment-agnostic (synth needs no credentials)."""
    account = os.environ.get("CDK_DEPLOY_ACCOUNT") or os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = os.environ.get("CDK_DEPLOY_REGION") or os.environ.get("CDK_DEFAULT_REGION")
    if account and region:
        return Environment(account=account, region=region)
    return None


def build_app(context: Mapping[str, Any] | None = None, *, nag: bool = True,
              outdir: str | None = None, settings: InfraSettings | None = None
              ) -> tuple[App, StepsagaStack]:
    """The app and its stack. `context` adds to cdk.json's (the tests' way of passing
    ``-c``): ``stepsaga:stage`` picks ``infra/stages/<stage>.json``; `settings`, when
    given, is used instead of any file. `nag` adds cdk-nag's ``AwsSolutionsChecks`` and
    ``NIST80053R5Checks`` (an unsuppressed finding is an error annotation, which fails
    ``cdk synth``)."""
    kwargs: dict[str, Any] = {}
    if context is not None:
        kwargs["context"] = dict(context)
    if outdir is not None:
        kwargs["outdir"] = outdir
    app = App(**kwargs)
    if settings is None:
        settings = InfraSettings.from_context(app.node.try_get_context,
                                              list(app.node.get_all_context().keys()))
    name = stack_name(settings)
    stack = StepsagaStack(  # the construct id is the stack name: `cdk deploy stepsaga-dev`
        app, name, stack_name=name, settings=settings,
        env=environment(),
        description=f"stepsaga ({settings.stage}): EventBridge bus and rules, SQS queues, "
                    "Step Functions supervisor workflows, DynamoDB claim table.")
    if nag:
        Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
        Aspects.of(app).add(NIST80053R5Checks(verbose=True))
    return app, stack
