"""ExecuteChangeSet: outputs after success, a failed status after failure.

The gaps:

- After a change set is executed the stack keeps the output map (and description)
  of the template it had before — for a stack created by a change set (how the CDK
  CLI deploys) that is the empty template: DescribeStacks shows no ``Outputs``.
- When a resource fails to create or update, ExecuteChangeSet answers HTTP 500 and
  the stack stays ``*_COMPLETE``: the CLI retries, then reports success for a stack
  that is missing resources.

The fix: on success the stack takes the change set's template, parameters,
description and a fresh output map; on failure the stack ends
``CREATE_FAILED`` / ``UPDATE_FAILED`` with the error as its status reason and a stack
event saying so (which the CLI reports), and the call still answers 200, as AWS does
(a failed execution shows in the stack, not in the API call).
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
    models: Any = importlib.import_module("moto.cloudformation.models")
    backend_class = models.CloudFormationBackend
    original: Callable[..., None] = backend_class.execute_change_set

    def find(backend: Any, change_set_name: str) -> Any:
        if change_set_name in backend.change_sets:
            return backend.change_sets[change_set_name]
        for change_set in backend.change_sets.values():
            if change_set.change_set_name == change_set_name:
                return change_set
        return None

    @functools.wraps(original)
    def execute_change_set(self: Any, change_set_name: str,
                           stack_name: str | None = None) -> None:
        change_set = find(self, change_set_name)
        try:
            original(self, change_set_name, stack_name)
        except Exception as exc:
            if change_set is None:
                raise
            stack = self.stacks[change_set.stack_id]
            failed = f"{change_set.change_set_type}_FAILED"
            reason = f"{type(exc).__name__}: {exc}"
            stack.status = failed
            stack.status_reason = reason
            stack._add_stack_event(failed, resource_status_reason=reason)
            LOG.exception("change set %s of %s failed", change_set_name, stack.name)
            change_set.execution_status = "EXECUTE_FAILED"
            return
        if change_set is None:
            return
        stack = self.stacks[change_set.stack_id]
        stack.template = change_set.template
        stack._parse_template()
        stack.description = stack.template_dict.get("Description")
        stack.parameters = change_set.parameters
        stack.output_map = stack._create_output_map()

    backend_class.execute_change_set = execute_change_set
