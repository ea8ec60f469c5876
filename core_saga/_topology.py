"""Publish routing: which queues receive a published message type."""

from __future__ import annotations

from collections.abc import Iterable

from ._messages import Message


class Topology:
    """Maps message types to the queues subscribed to them.

    Every process of a deployment builds the same topology (usually from the same
    list of endpoints), so a publish lands on every subscribed queue no matter which
    process published it.
    """

    def __init__(self) -> None:
        self._routes: dict[str, list[str]] = {}

    def subscribe(self, message_type: type[Message] | str, queue: str) -> None:
        """Deliver published `message_type` messages to `queue`."""
        urn = message_type if isinstance(message_type, str) else message_type.message_urn
        queues = self._routes.setdefault(urn, [])
        if queue not in queues:
            queues.append(queue)

    def subscribe_all(self, urns: Iterable[str], queue: str) -> None:
        for urn in urns:
            self.subscribe(urn, queue)

    def routes(self, urn: str) -> tuple[str, ...]:
        """The queues a published `urn` goes to."""
        return tuple(self._routes.get(urn, ()))

    def __repr__(self) -> str:
        return f"Topology({self._routes!r})"
