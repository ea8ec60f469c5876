"""Size checks for what the bridge sends: Step Functions takes at most 256 KiB."""

from __future__ import annotations

import json

from ._constants import MAX_EVENTBRIDGE_ENTRY_BYTES, MAX_STEP_FUNCTIONS_INPUT_BYTES


class PayloadTooLargeError(ValueError):
    """A detail or entry is larger than its destination accepts.

    ``handoff_id`` names the hand-off (when known), ``size`` and ``limit`` are in bytes,
    ``destination`` says which limit was hit.
    """

    def __init__(self, *, handoff_id: str | None, size: int, limit: int,
                 destination: str) -> None:
        self.handoff_id = handoff_id
        self.size = size
        self.limit = limit
        self.destination = destination
        who = f"hand-off {handoff_id}" if handoff_id else "a hand-off without a handoffId"
        super().__init__(
            f"{who}: the detail is {size} bytes, over the {limit}-byte limit of "
            f"{destination} by {size - limit} bytes; keep large data out of the payload "
            "(store it and pass a reference)")


def _handoff_id_of(detail_json: bytes) -> str | None:
    try:
        detail = json.loads(detail_json)
    except ValueError:
        return None
    value = detail.get("handoffId") if isinstance(detail, dict) else None
    return value if isinstance(value, str) else None


def check_step_functions_size(detail_json: bytes, *, handoff_id: str | None = None,
                              limit: int = MAX_STEP_FUNCTIONS_INPUT_BYTES) -> None:
    """Raise :class:`PayloadTooLargeError` when `detail_json` (the detail that becomes a
    workflow's input through the rule's ``InputPath $.detail``) exceeds `limit` bytes
    (256 KiB, Step Functions' input limit). The hand-off id is read from the detail
    unless given."""
    size = len(detail_json)
    if size > limit:
        raise PayloadTooLargeError(handoff_id=handoff_id or _handoff_id_of(detail_json),
                                   size=size, limit=limit,
                                   destination="a Step Functions execution input")


def check_eventbridge_entry_size(entry_json: bytes, *, handoff_id: str | None = None,
                                 limit: int = MAX_EVENTBRIDGE_ENTRY_BYTES) -> None:
    """Raise :class:`PayloadTooLargeError` when a PutEvents entry exceeds `limit` bytes
    (1 MB by default; pass the limit your account has)."""
    size = len(entry_json)
    if size > limit:
        raise PayloadTooLargeError(handoff_id=handoff_id, size=size, limit=limit,
                                   destination="an EventBridge PutEvents entry")
