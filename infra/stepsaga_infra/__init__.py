"""stepsaga's CDK app: the supervisor workflows (Step Functions Standard), the
EventBridge bus and rules that start them, the SQS queues of the saga and its services,
the hand-off claim table, the workers' policies and the schema registry. See
docs/deploy.md.

    from stepsaga_infra import build_app
    app, stack = build_app({"stepsaga:stage": "dev"})   # reads infra/stages/dev.json

The names below load on first use: importing the package (as the ``stepsaga local``
commands do) does not start the CDK's JavaScript runtime.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_app": ".app_builder",
    "stack_name": ".app_builder",
    "CONTEXT_PREFIX": ".settings",
    "STAGES_DIR": ".settings",
    "InfraSettings": ".settings",
    "SettingsError": ".settings",
    "StepsagaStack": ".stack",
}

__all__ = [
    "CONTEXT_PREFIX",
    "STAGES_DIR",
    "InfraSettings",
    "SettingsError",
    "StepsagaStack",
    "build_app",
    "stack_name",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
