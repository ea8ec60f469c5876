"""Consumers: participant services' message handlers, like MassTransit's IConsumer."""

from __future__ import annotations

import typing
from typing import Any, ClassVar, Generic, TypeVar

from ._context import ConsumeContext
from ._messages import Message

M = TypeVar("M", bound=Message)


class Consumer(Generic[M]):
    """Handles one message type: subclass ``Consumer[ChargePayment]`` and write
    ``async def consume(self, ctx)``. What it publishes, sends or responds goes to the
    outbox in the same transaction as its inbox entry and, through
    ``ctx.transaction`` (SQLAlchemy Core statements), its own tables."""

    message_type: ClassVar[type[Message]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            if typing.get_origin(base) is Consumer:
                (arg,) = typing.get_args(base)
                if isinstance(arg, type) and issubclass(arg, Message):
                    cls.message_type = arg

    async def consume(self, ctx: ConsumeContext[M]) -> None:
        """Handle one message. Raise to fault it (it is retried, then dead-lettered)."""
        raise NotImplementedError
