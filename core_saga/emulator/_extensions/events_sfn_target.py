"""EventBridge rule target = Step Functions state machine.

The gap (moto 5.2.5): ``Rule.send_to_targets`` knows log groups, archives, SQS queues,
event buses and API destinations; for a state machine ARN it raises
``NotImplementedError`` and PutEvents answers HTTP 500.

The fix: ``send_to_targets`` first starts an execution for each matching state-machine
target, then hands the remaining targets to moto unchanged. The execution's input is
what AWS would send: the target's ``Input``, ``InputPath`` or ``InputTransformer``, else
the whole event (see ``_event_input``). It is started through the Step Functions backend
that the API uses, so with ``execute_state_machine`` on, the ASL interpreter runs it.
The execution gets a fresh UUID as its name, as on AWS. As on AWS, a failed start (no
such state machine, input that is not JSON) does not fail PutEvents: it is logged to
the server's log and the event is dropped.
"""

from __future__ import annotations

import copy
import functools
import importlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from ._event_input import target_input

LOG = logging.getLogger("stepsaga.emulator")


def is_state_machine(target: dict[str, Any]) -> bool:
    """Whether a rule target's ARN names a Step Functions state machine."""
    parts = str(target.get("Arn", "")).split(":")
    return len(parts) > 6 and parts[2] == "states" and parts[5] == "stateMachine"


def start_for_event(rule: Any, target: dict[str, Any], event: dict[str, Any]) -> str | None:
    """Start the target's state machine for `event`; the execution ARN, or None."""
    responses = importlib.import_module("moto.stepfunctions.responses")
    arn = str(target["Arn"])
    _, _, _, region, account, _ = arn.split(":", 5)
    try:
        body = target_input(target, event, rule_name=rule.name, rule_arn=rule.arn)
        backend = responses.get_backend(account, region)
        execution = backend.start_execution(arn, str(uuid.uuid4()), body)
    except Exception:
        LOG.exception("EventBridge rule %s could not start %s", rule.name, arn)
        return None
    execution_arn: str = execution.execution_arn
    return execution_arn


def apply() -> None:
    """Patch ``moto.events.models.Rule.send_to_targets``."""
    models = importlib.import_module("moto.events.models")
    original: Callable[..., None] = models.Rule.send_to_targets

    @functools.wraps(original)
    def send_to_targets(self: Any, original_event: dict[str, Any],
                        transform_input: bool = True) -> None:
        ours = [t for t in self.targets if is_state_machine(t)]
        if not ours:
            return original(self, original_event, transform_input)
        if not self.event_pattern.matches_event(original_event):
            return None
        for target in ours:
            start_for_event(self, target, original_event)
        rest = copy.copy(self)  # the same rule with moto's targets only (thread-safe)
        rest.targets = [t for t in self.targets if not is_state_machine(t)]
        return original(rest, original_event, transform_input)

    models.Rule.send_to_targets = send_to_targets
