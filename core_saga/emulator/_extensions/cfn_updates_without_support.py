"""Updating a resource whose moto model has no CloudFormation update.

The gap: when a change set modifies a resource whose model does not implement
``update_from_cloudformation_json`` (``AWS::Logs::LogGroup``,
``AWS::DynamoDB::Table``), moto replaces the resource in the stack's map with
``None``. Anything that refers to it — a state machine's ``LoggingConfiguration``
with ``Fn::GetAtt`` of the log group's ``Arn`` — then fails with ``Template error:
instance of Fn::GetAtt references undefined resource``. Changing the log retention
(a context value) broke the update.

The fix: log groups update in place (``RetentionInDays`` put or removed, tags added;
a new ``LogGroupName`` replaces the group, as on AWS); any other model without an
update keeps its existing resource, unchanged, with a warning in the server log,
instead of losing it.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger("stepsaga.emulator")


def apply() -> None:
    """Apply the fix (the module docstring says what and why)."""
    parsing: Any = importlib.import_module("moto.cloudformation.parsing")
    logs_models: Any = importlib.import_module("moto.logs.models")
    log_group_class = logs_models.LogGroup

    def update_log_group(cls: Any, /, original_resource: Any, new_resource_name: str,
                         cloudformation_json: Any, account_id: str,
                         region_name: str) -> Any:
        properties = cloudformation_json.get("Properties", {})
        backend = logs_models.logs_backends[account_id][region_name]
        name = properties.get("LogGroupName", original_resource.name)
        if name != original_resource.name:
            created = cls.create_from_cloudformation_json(
                name, cloudformation_json, account_id, region_name)
            backend.delete_log_group(original_resource.name)
            return created
        retention = properties.get("RetentionInDays")
        if retention is None:
            backend.delete_retention_policy(original_resource.name)
        else:
            backend.put_retention_policy(original_resource.name, int(retention))
        tags = {tag["Key"]: tag["Value"] for tag in properties.get("Tags", [])}
        if tags:
            backend.tag_log_group(original_resource.name, tags)
        return original_resource

    log_group_class.update_from_cloudformation_json = classmethod(update_log_group)

    original: Callable[..., Any] = parsing.parse_and_update_resource

    @functools.wraps(original)
    def parse_and_update_resource(logical_id: str, resource_json: dict[str, Any],
                                  resources_map: Any, account_id: str,
                                  region_name: str) -> Any:
        updated = original(logical_id, resource_json, resources_map, account_id,
                           region_name)
        if updated is None:
            kept = resources_map._parsed_resources.get(logical_id)
            if kept is not None:
                LOG.warning("moto cannot update %s (%s): kept unchanged", logical_id,
                            resource_json.get("Type"))
                return kept
        return updated

    parsing.parse_and_update_resource = parse_and_update_resource
