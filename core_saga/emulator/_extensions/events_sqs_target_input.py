"""EventBridge rule target = SQS queue, with ``Input``, ``InputPath`` or ``InputTransformer``.

The gap (moto 5.2.5): for SQS targets moto ignores ``Input`` and ``InputPath`` (the
queue gets the whole event), and its ``InputTransformer`` pastes string values into the
template without quotes and then parses the result as JSON, so the AWS-documented
``{"id": <id>}`` (with a string ``id``) or any plain-text template answers PutEvents
with HTTP 500.

The fix: for an SQS target that sets one of the three, the message body is computed as
AWS computes it (see ``_event_input``) and sent as is, with ``SqsParameters``'
``MessageGroupId``. Targets without them are left to moto (the whole event, as on AWS).
Like moto, a FIFO queue without content-based deduplication gets nothing (AWS needs it).
"""

from __future__ import annotations

import copy
import functools
import importlib
import logging
from collections.abc import Callable
from typing import Any

from ._event_input import target_input

LOG = logging.getLogger("stepsaga.emulator")
_SHAPING = ("Input", "InputPath", "InputTransformer")


def is_shaped_sqs_target(target: dict[str, Any]) -> bool:
    """An SQS target that sets Input, InputPath or InputTransformer."""
    return (str(target.get("Arn", "")).split(":")[2:3] == ["sqs"]
            and any(target.get(key) for key in _SHAPING))


def send_for_event(rule: Any, target: dict[str, Any], event: dict[str, Any]) -> None:
    """Send the target's input for `event` to its queue."""
    sqs = importlib.import_module("moto.sqs.models")
    _, _, _, region, account, queue_name = str(target["Arn"]).split(":", 5)
    try:
        backend = sqs.sqs_backends[account][region]
        group_id = (target.get("SqsParameters") or {}).get("MessageGroupId")
        if group_id:
            attributes = backend.get_queue_attributes(
                queue_name=queue_name, attribute_names=["ContentBasedDeduplication"])
            if attributes.get("ContentBasedDeduplication") == "false":
                LOG.warning("EventBridge cannot send to FIFO queue %s without "
                            "content-based deduplication", queue_name)
                return
        body = target_input(target, event, rule_name=rule.name, rule_arn=rule.arn)
        backend.send_message(queue_name=queue_name, message_body=body, group_id=group_id)
    except Exception:
        LOG.exception("EventBridge rule %s could not send to %s", rule.name, target["Arn"])


def apply() -> None:
    """Patch ``moto.events.models.Rule.send_to_targets``."""
    models = importlib.import_module("moto.events.models")
    original: Callable[..., None] = models.Rule.send_to_targets

    @functools.wraps(original)
    def send_to_targets(self: Any, original_event: dict[str, Any],
                        transform_input: bool = True) -> None:
        ours = [t for t in self.targets if is_shaped_sqs_target(t)] if transform_input else []
        if not ours:
            return original(self, original_event, transform_input)
        if not self.event_pattern.matches_event(original_event):
            return None
        for target in ours:
            send_for_event(self, target, original_event)
        rest = copy.copy(self)  # the same rule with the other targets only (thread-safe)
        rest.targets = [t for t in self.targets if not is_shaped_sqs_target(t)]
        return original(rest, original_event, transform_input)

    models.Rule.send_to_targets = send_to_targets
