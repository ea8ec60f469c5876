"""``UsePreviousValue`` for an SSM-typed parameter (CDK's ``BootstrapVersion``).

The gap: every CDK template has the parameter ``BootstrapVersion`` of type
``AWS::SSM::Parameter::Value<String>`` with default ``/cdk-bootstrap/hnb659fds/version``.
On an update the CLI passes it with ``UsePreviousValue: true``. On AWS the previous
value is the parameter *name*, resolved again; moto takes the previously *resolved*
value (the bootstrap version, e.g. ``"30"``) and then looks that up as a parameter
name, finds nothing and fails the change set with ``AttributeError: 'NoneType'
object has no attribute 'value'``. So every update of a CDK stack failed.

The fix: each resource map remembers the SSM parameter names its SSM-typed
parameters were resolved from; on the next load, an input equal to the value
resolved before is taken as "the previous value" and replaced by that name, which is
then resolved again, as on AWS.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any, Final

_SSM_TYPE: Final = "AWS::SSM::Parameter::"


def apply() -> None:
    """Apply the fix (the module docstring says what and why)."""
    parsing: Any = importlib.import_module("moto.cloudformation.parsing")
    resource_map = parsing.ResourceMap
    original: Callable[..., None] = resource_map.load_parameters

    @functools.wraps(original)
    def load_parameters(self: Any) -> None:
        slots: dict[str, Any] = self._template.get("Parameters", {}) or {}
        names: dict[str, Any] = getattr(self, "_stepsaga_ssm_names", {})
        resolved_before = dict(self.resolved_parameters)
        for key, value in list(self.input_parameters.items()):
            slot_type = str(slots.get(key, {}).get("Type", ""))
            if (slot_type.startswith(_SSM_TYPE) and key in names
                    and key in resolved_before and value == resolved_before[key]):
                self.input_parameters[key] = names[key]
        original(self)
        self._stepsaga_ssm_names = {
            key: self.input_parameters.get(key, slot.get("Default"))
            for key, slot in slots.items()
            if str(slot.get("Type", "")).startswith(_SSM_TYPE)}

    resource_map.load_parameters = load_parameters
