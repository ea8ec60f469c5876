"""``Ref`` to an ``AWS::Events::EventBus``.

The gap: moto resolves ``{"Ref": logical id}`` to the resource's
``physical_resource_id``, and falls back to the model object itself when it has
none — which ``EventBus`` lacks. A rule with ``EventBusName: {"Ref": bus}`` (what CDK
writes) then hands an ``EventBus`` object to ``put_rule``, which fails with
``AttributeError: 'EventBus' object has no attribute 'split'`` (HTTP 500 while
executing the change set — after the CLI already reported success).

The fix: ``EventBus.physical_resource_id`` is the bus name, as ``Ref`` returns on AWS.
"""

from __future__ import annotations

import importlib
from typing import Any


def apply() -> None:
    """Apply the fix (the module docstring says what and why)."""
    models: Any = importlib.import_module("moto.events.models")
    models.EventBus.physical_resource_id = property(lambda self: self.name)
