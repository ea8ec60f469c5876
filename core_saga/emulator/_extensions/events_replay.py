"""Replays from an archive: the time window, and the targets' input settings.

The gap (moto 5.2.5): StartReplay sends **every** archived event, whatever
``EventStartTime`` and ``EventEndTime`` say, and sends them with
``transform_input=False``: SQS targets get the bare event instead of what their
``InputTransformer`` (or ``Input``/``InputPath``) makes of it, so a replayed status
event reaches a saga's queue as something that is not an envelope. AWS replays only the
events of the window, to the rules of the bus, as their targets are configured.

The fix: the replay sends the archived events whose time is within the window (both
ends included), and the SQS targets that shape their input get it shaped
(``events_sqs_target_input``); the archive's own rule still ignores replayed events.
"""

from __future__ import annotations

import copy
import datetime
import functools
import importlib
from collections.abc import Callable
from typing import Any

from .events_sqs_target_input import is_shaped_sqs_target, send_for_event


def _seconds(value: Any) -> float | None:
    """Epoch seconds of an event time or a request time (number, datetime or text)."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return moment.timestamp()
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return _seconds(moment)
    return None


def in_window(event: dict[str, Any], start: Any, end: Any) -> bool:
    """Whether the archived `event`'s time is within [start, end] (unknown: kept)."""
    when, low, high = _seconds(event.get("time")), _seconds(start), _seconds(end)
    if when is None:
        return True
    return (low is None or when >= low) and (high is None or when <= high)


def apply() -> None:
    """Wrap ``Replay.replay_events`` and let shaped SQS targets shape replayed events."""
    models = importlib.import_module("moto.events.models")
    original_replay: Callable[..., None] = models.Replay.replay_events

    @functools.wraps(original_replay)
    def replay_events(self: Any, archive: Any) -> None:
        kept = [e for e in archive.events
                if in_window(e, self.event_start_time, self.event_end_time)]
        window = models.Archive.__new__(models.Archive)
        window.__dict__.update(archive.__dict__)
        window.events = kept
        original_replay(self, window)

    models.Replay.replay_events = replay_events
    original_send: Callable[..., None] = models.Rule.send_to_targets

    @functools.wraps(original_send)
    def send_to_targets(self: Any, original_event: dict[str, Any],
                        transform_input: bool = True) -> None:
        if transform_input or "replay-name" not in original_event:
            return original_send(self, original_event, transform_input)
        ours = [t for t in self.targets if is_shaped_sqs_target(t)]
        if ours and self.event_pattern.matches_event(original_event):
            for target in ours:
                send_for_event(self, target, original_event)
        rest = [t for t in self.targets if not is_shaped_sqs_target(t)]
        if not rest:
            return None
        others = copy.copy(self)  # the same rule with the other targets only
        others.targets = rest
        return original_send(others, original_event, transform_input)

    models.Rule.send_to_targets = send_to_targets
