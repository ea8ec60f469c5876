"""A disabled EventBridge rule delivers nothing.

The gap (moto 5.2.5): ``DisableRule`` records ``State: DISABLED`` and
``DescribeRule`` shows it, but PutEvents still matches the rule and sends to its
targets, so "a rule switched off" — the outage an operator or a bad deploy causes —
cannot be reproduced. AWS skips disabled rules.

The fix: ``Rule.send_to_targets`` does nothing for a rule whose state is not
``ENABLED`` (applied after the target extensions, so it wraps them all).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any


def apply() -> None:
    """Wrap ``moto.events.models.Rule.send_to_targets``."""
    models = importlib.import_module("moto.events.models")
    original: Callable[..., None] = models.Rule.send_to_targets

    @functools.wraps(original)
    def send_to_targets(self: Any, original_event: dict[str, Any],
                        transform_input: bool = True) -> None:
        if str(getattr(self, "state", "ENABLED")) != "ENABLED":
            return None
        return original(self, original_event, transform_input)

    models.Rule.send_to_targets = send_to_targets
