"""stepsaga's CDK app: the supervisor workflows (Step Functions Standard), the
EventBridge bus and rules that start them, the SQS queues of the saga and its services,
and the hand-off claim table. See docs/deploy.md.

    from stepsaga_infra import build_app
    app, stack = build_app({"stepsaga:stage": "dev"})
"""

from .app_builder import build_app, stack_name
from .settings import CONTEXT_PREFIX, InfraSettings, SettingsError
from .stack import StepsagaStack

__all__ = [
    "CONTEXT_PREFIX",
    "InfraSettings",
    "SettingsError",
    "StepsagaStack",
    "build_app",
    "stack_name",
]
