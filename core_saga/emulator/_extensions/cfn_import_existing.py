"""``ImportExistingResources`` on CreateChangeSet (``cdk deploy --import-existing-resources``).

The gap: moto ignores the parameter. A stage destroyed with ``DeletionPolicy: Retain``
leaves its named queues, table and log groups behind (with their data, as intended);
the next deploy of the same stage then creates them again and fails (``ResourceInUse``
for the table, ``ResourceAlreadyExists`` for a log group, ``QueueAlreadyExists`` for a
queue whose attributes changed). On AWS the parameter makes CloudFormation import a
resource with a custom name that already exists instead of creating it.

The fix: while a change set created with ``ImportExistingResources: true`` executes, a
queue, table or log group whose name already exists is adopted into the stack (its
properties updated as an update would, where moto can update that type) instead of
created. Without the parameter nothing changes: the deploy fails as on AWS.
"""

from __future__ import annotations

import functools
import importlib
import logging
import threading
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger("stepsaga.emulator")

_local = threading.local()
_IMPORTING: set[str] = set()
"""Ids of change sets created with ImportExistingResources."""


def _existing(resource_type: str, name: str, account_id: str, region_name: str) -> Any:
    """The backend object of the named resource, or None."""
    if resource_type == "AWS::SQS::Queue":
        sqs: Any = importlib.import_module("moto.sqs.models")
        return sqs.sqs_backends[account_id][region_name].queues.get(name)
    if resource_type == "AWS::DynamoDB::Table":
        dynamodb: Any = importlib.import_module("moto.dynamodb.models")
        return dynamodb.dynamodb_backends[account_id][region_name].tables.get(name)
    if resource_type == "AWS::Logs::LogGroup":
        logs: Any = importlib.import_module("moto.logs.models")
        return logs.logs_backends[account_id][region_name].groups.get(name)
    return None


def apply() -> None:
    """Wrap CreateChangeSet, ExecuteChangeSet and resource creation."""
    responses: Any = importlib.import_module("moto.cloudformation.responses")
    models: Any = importlib.import_module("moto.cloudformation.models")
    parsing: Any = importlib.import_module("moto.cloudformation.parsing")
    response_class = responses.CloudFormationResponse
    backend_class = models.CloudFormationBackend

    original_response: Callable[..., Any] = response_class.create_change_set

    @functools.wraps(original_response)
    def create_change_set_response(self: Any) -> Any:
        _local.importing = str(self._get_param("ImportExistingResources", "false")
                               ).lower() == "true"
        try:
            return original_response(self)
        finally:
            _local.importing = False

    original_create: Callable[..., tuple[str, str]] = backend_class.create_change_set

    @functools.wraps(original_create)
    def create_change_set(self: Any, *args: Any, **kwargs: Any) -> tuple[str, str]:
        change_set_id, stack_id = original_create(self, *args, **kwargs)
        if getattr(_local, "importing", False):
            _IMPORTING.add(change_set_id)
        return change_set_id, stack_id

    original_execute: Callable[..., None] = backend_class.execute_change_set

    @functools.wraps(original_execute)
    def execute_change_set(self: Any, change_set_name: str,
                           stack_name: str | None = None) -> None:
        ids = {cs_id for cs_id, cs in self.change_sets.items()
               if change_set_name in (cs_id, cs.change_set_name)}
        _local.adopt = bool(ids & _IMPORTING)
        try:
            original_execute(self, change_set_name, stack_name)
        finally:
            _local.adopt = False

    original_parse: Callable[..., Any] = parsing.parse_and_create_resource

    @functools.wraps(original_parse)
    def parse_and_create_resource(logical_id: str, resource_json: dict[str, Any],
                                  resources_map: Any, account_id: str,
                                  region_name: str) -> Any:
        if getattr(_local, "adopt", False):
            parsed = parsing.parse_resource_and_generate_name(
                logical_id, resource_json, resources_map)
            if parsed:
                resource_class, resolved, name = parsed
                found = _existing(resource_json["Type"], name, account_id, region_name)
                if found is not None:
                    return _adopt(resource_class, found, logical_id, resource_json["Type"],
                                  resolved, name, account_id, region_name)
        return original_parse(logical_id, resource_json, resources_map, account_id,
                              region_name)

    response_class.create_change_set = create_change_set_response
    backend_class.create_change_set = create_change_set
    backend_class.execute_change_set = execute_change_set
    parsing.parse_and_create_resource = parse_and_create_resource


def _adopt(resource_class: Any, found: Any, logical_id: str, resource_type: str,
           resolved: dict[str, Any], name: str, account_id: str, region_name: str) -> Any:
    """`found` as the stack's resource `logical_id`, updated to `resolved` where moto
    has an update for its type."""
    adopted = found
    if not hasattr(resource_class.update_from_cloudformation_json, "__isabstractmethod__"):
        adopted = resource_class.update_from_cloudformation_json(
            original_resource=found, new_resource_name=name, cloudformation_json=resolved,
            account_id=account_id, region_name=region_name)
    adopted.cf_resource_type = resource_type
    adopted.logical_resource_id = logical_id
    LOG.info("imported existing %s %s as %s", resource_type, name, logical_id)
    return adopted
