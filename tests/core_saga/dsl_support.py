"""Messages and instance data shared by the DSL tests (one file per MassTransit section)."""

from __future__ import annotations

from core_saga import Message, SagaState


class Start(Message):
    message_namespace = "t.act"
    id: str
    value: int = 0
    flag: bool = False


class Poke(Message):
    message_namespace = "t.act"
    id: str
    kind: str = ""


class Noticed(Message):
    message_namespace = "t.act"
    id: str
    value: int


class Command(Message):
    message_namespace = "t.act"
    id: str


class Tick(Message):
    message_namespace = "t.act"
    id: str


def by_id(m: Start | Poke) -> str:
    return m.id


class Data(SagaState):
    value: int = 0
    log: list[str] = []
    tick_token: str | None = None
    attempts: int = 0
    error: str | None = None
