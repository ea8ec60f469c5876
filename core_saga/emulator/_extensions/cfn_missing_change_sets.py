"""DescribeChangeSet and DeleteChangeSet of a change set that does not exist.

The gap: before every update the CDK CLI deletes any leftover change set named
``cdk-deploy-change-set`` (DeleteChangeSet, which AWS answers with success when
there is none), and it reads ``ChangeSetNotFoundException`` from DescribeChangeSet
as "no such change set". moto's DeleteChangeSet of a missing set fails with an
``UnboundLocalError`` (HTTP 500: the CLI retries for 40 s, then gives up), and its
DescribeChangeSet answers ``ValidationError: Stack with id ... does not exist``,
which the CLI reports as a failed deploy. So every ``cdk deploy`` after the first
failed.

The fix: DeleteChangeSet of a missing set does nothing; DescribeChangeSet of one
raises ``ChangeSetNotFoundException`` (code ``ChangeSetNotFound``, HTTP 404), as on
AWS.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any


def apply() -> None:
    """Apply the fix (the module docstring says what and why)."""
    models: Any = importlib.import_module("moto.cloudformation.models")
    exceptions: Any = importlib.import_module("moto.cloudformation.exceptions")
    backend_class = models.CloudFormationBackend

    class ChangeSetNotFound(exceptions.CloudFormationError):  # type: ignore[misc]
        code = "ChangeSetNotFoundException"  # the model's shape: serialized as AWS does

        def __init__(self, name: str) -> None:
            super().__init__(f"ChangeSet [{name}] does not exist")

    def exists(backend: Any, change_set_name: str) -> bool:
        return change_set_name in backend.change_sets or any(
            cs.change_set_name == change_set_name for cs in backend.change_sets.values())

    original_delete: Callable[..., None] = backend_class.delete_change_set
    original_describe: Callable[..., Any] = backend_class.describe_change_set

    @functools.wraps(original_delete)
    def delete_change_set(self: Any, change_set_name: str) -> None:
        if exists(self, change_set_name):
            original_delete(self, change_set_name)

    @functools.wraps(original_describe)
    def describe_change_set(self: Any, change_set_name: str) -> Any:
        if not exists(self, change_set_name):
            raise ChangeSetNotFound(change_set_name)
        return original_describe(self, change_set_name)

    backend_class.delete_change_set = delete_change_set
    backend_class.describe_change_set = describe_change_set
