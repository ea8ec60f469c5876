"""Deploying small templates through change sets, as the CDK CLI does (for the smoke
tests of the ``cfn_*`` extensions)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from botocore.exceptions import ClientError


def deploy(cf: Any, stack: str, template: dict[str, Any], *,
           parameters: list[dict[str, Any]] | None = None,
           import_existing: bool = False) -> dict[str, Any]:
    """Create or update `stack` through a change set; the stack as DescribeStacks shows
    it afterwards."""
    try:
        cf.describe_stacks(StackName=stack)
        kind = "UPDATE"
    except ClientError:
        kind = "CREATE"
    name = f"cs-{uuid.uuid4().hex[:8]}"
    extra: dict[str, Any] = {"ImportExistingResources": True} if import_existing else {}
    cf.create_change_set(StackName=stack, ChangeSetName=name, ChangeSetType=kind,
                         TemplateBody=json.dumps(template), Parameters=parameters or [],
                         Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"], **extra)
    cf.execute_change_set(StackName=stack, ChangeSetName=name)
    described: dict[str, Any] = cf.describe_stacks(StackName=stack)["Stacks"][0]
    return described


def outputs(described: dict[str, Any]) -> dict[str, str]:
    """A described stack's outputs by key."""
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def unique(base: str) -> str:
    """`base` with a random suffix."""
    return f"{base}-{uuid.uuid4().hex[:8]}"
