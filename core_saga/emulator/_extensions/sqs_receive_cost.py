"""ReceiveMessage and GetQueueAttributes cost what they should as queues fill.

The gap (moto 5.2.5): for every message it hands out, ``ReceiveMessage`` checks the
retention period through ``get_queue_attributes``, which builds the queue's whole
attribute dictionary — three of its entries count messages by scanning every message
on the queue — and builds it twice per requested name. A receive of 10 messages from a
queue holding *n* thus scans the queue about 60 times: O(n) per message received. Under
a backlog the emulator's CPU goes to these scans, receives slow down, the backlog
grows, and the server collapses (seen at a few thousand messages in flight). AWS has
no such cost.

The fix, same answers: the retention check reads the queue's retention period
directly, and ``get_queue_attributes`` builds the dictionary once per call.
"""

from __future__ import annotations

import importlib
from typing import Any

from moto.core.utils import unix_time


def apply() -> None:
    """Replace ``SQSBackend.is_message_valid_based_on_retention_period`` and
    ``SQSBackend.get_queue_attributes``."""
    models = importlib.import_module("moto.sqs.models")
    backend = models.SQSBackend
    original_get_attributes = backend.get_queue_attributes

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str,
                                                   message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    def get_queue_attributes(self: Any, queue_name: str,
                             attribute_names: list[str]) -> dict[str, Any]:
        queue = self.get_queue(queue_name)
        valid = {"All", *queue.BASE_ATTRIBUTES, *queue.FIFO_ATTRIBUTES, *queue.KMS_ATTRIBUTES}
        if not attribute_names or "All" in attribute_names or any(
                n not in valid for n in attribute_names):
            # moto's answer (and its InvalidAttributeName) as they were
            return original_get_attributes(self, queue_name, attribute_names)  # type: ignore[no-any-return]
        everything = queue.attributes
        return {n: everything[n] for n in attribute_names if everything.get(n) is not None}

    backend.is_message_valid_based_on_retention_period = (
        is_message_valid_based_on_retention_period)
    backend.get_queue_attributes = get_queue_attributes
