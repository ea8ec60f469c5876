"""``AWS::IAM::ManagedPolicy`` and a role's ``ManagedPolicyArns`` under CloudFormation.

The gaps:

- a role created or updated by CloudFormation ignores ``ManagedPolicyArns``: the role
  has none of the policies the template attaches (ListAttachedRolePolicies is empty);
- a managed policy has no CloudFormation delete or update: ``cdk destroy`` leaves it
  behind (so the next deploy of the stage fails with ``EntityAlreadyExists``), and a
  changed document is not applied.

The fix: roles attach (and on update re-sync) their ``ManagedPolicyArns`` (an AWS
managed policy moto has not loaded is skipped with a warning); a managed
policy is deleted with its stack (detached from every role, user and group first), and
an update makes the new document the policy's default version (as AWS does, keeping
the five newest versions).
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger("stepsaga.emulator")


def _backend(account_id: str, region_name: str) -> Any:
    iam: Any = importlib.import_module("moto.iam.models")
    utils: Any = importlib.import_module("moto.utilities.utils")
    return iam.iam_backends[account_id][utils.get_partition(region_name)]


def _sync_attachments(role: Any, wanted: list[str], account_id: str,
                      region_name: str) -> None:
    backend = _backend(account_id, region_name)
    for arn in [a for a in role.managed_policies if a not in wanted]:
        backend.detach_role_policy(arn, role.name)
    known = {p.arn for p in backend.managed_policies.values()}
    for arn in wanted:
        if arn in role.managed_policies:
            continue
        if arn not in known and ":iam::aws:policy/" in arn:
            # AWS's own policies are not loaded here (moto's load_aws_managed_policies
            # is off: it costs seconds at every start); ours always are
            LOG.warning("role %s: AWS managed policy %s is not loaded; not attached",
                        role.name, arn)
            continue
        backend.attach_role_policy(arn, role.name)


def apply() -> None:
    """Wrap the Role model's create and update; give ManagedPolicy a delete and update."""
    iam: Any = importlib.import_module("moto.iam.models")
    role_class, policy_class = iam.Role, iam.ManagedPolicy

    original_create: Callable[..., Any] = role_class.create_from_cloudformation_json.__func__
    original_update: Callable[..., Any] = role_class.update_from_cloudformation_json.__func__

    def create_role(cls: Any, /, resource_name: str, cloudformation_json: Any,
                    account_id: str, region_name: str, **kwargs: Any) -> Any:
        role = original_create(cls, resource_name, cloudformation_json, account_id,
                               region_name, **kwargs)
        wanted = list(cloudformation_json.get("Properties", {}).get("ManagedPolicyArns", []))
        _sync_attachments(role, wanted, account_id, region_name)
        return role

    def update_role(cls: Any, original_resource: Any, new_resource_name: str,
                    cloudformation_json: Any, account_id: str, region_name: str) -> Any:
        role = original_update(cls, original_resource, new_resource_name,
                               cloudformation_json, account_id, region_name)
        wanted = list(cloudformation_json.get("Properties", {}).get("ManagedPolicyArns", []))
        _sync_attachments(role, wanted, account_id, region_name)
        return role

    def delete_policy(cls: Any, resource_name: str, cloudformation_json: Any,
                      account_id: str, region_name: str) -> None:
        backend = _backend(account_id, region_name)  # resource_name is the ARN
        policy = backend.managed_policies.get(resource_name)
        if policy is None:
            return
        for holder in [*backend.roles.values(), *backend.users.values(),
                       *backend.groups.values()]:
            if resource_name in holder.managed_policies:
                policy.detach_from(holder)
        backend.delete_policy(resource_name)

    def update_policy(cls: Any, original_resource: Any, new_resource_name: str,
                      cloudformation_json: Any, account_id: str, region_name: str) -> Any:
        properties = cloudformation_json.get("Properties", {})
        name = properties.get("ManagedPolicyName", original_resource.name)
        if name != original_resource.name:  # a new name replaces the policy
            created = cls.create_from_cloudformation_json(
                new_resource_name, cloudformation_json, account_id, region_name)
            delete_policy(cls, original_resource.arn, {}, account_id, region_name)
            return created
        backend = _backend(account_id, region_name)
        document = json.dumps(properties.get("PolicyDocument"))
        versions = original_resource.versions
        current = next((v.document for v in versions if v.is_default), None)
        if document != current:
            if len(versions) >= 5:  # AWS keeps five: drop the oldest non-default
                oldest = next(v for v in versions if not v.is_default)
                backend.delete_policy_version(original_resource.arn, oldest.version_id)
            backend.create_policy_version(original_resource.arn, document, "true")
        return original_resource

    role_class.create_from_cloudformation_json = classmethod(create_role)
    role_class.update_from_cloudformation_json = classmethod(update_role)
    policy_class.delete_from_cloudformation_json = classmethod(delete_policy)
    policy_class.update_from_cloudformation_json = classmethod(update_policy)
