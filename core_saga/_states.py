"""States and the instance data a saga keeps."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


def pascal_case(name: str) -> str:
    """``payment_pending`` -> ``PaymentPending``: attribute names become state and event names."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or name


class State:
    """A named state of a saga, declared as a class attribute: ``paid = State()``."""

    __slots__ = ("name", "owner", "terminal")

    def __init__(self, name: str | None = None, *, terminal: bool = False) -> None:
        self.name: str = name or ""
        self.owner: str = ""
        self.terminal = terminal
        """An end state: the static checks accept it as a place every path may end."""

    def __set_name__(self, owner: type, name: str) -> None:
        if not self.name:
            self.name = pascal_case(name)
        self.owner = owner.__name__

    def __repr__(self) -> str:
        return f"State({self.name!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, State):
            return self.name == other.name
        if isinstance(other, str):
            return self.name == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)


INITIAL = State("Initial")
"""The built-in state a new instance is in before its first event."""
FINAL = State("Final")
"""The built-in state `finalize` moves an instance to."""


class SagaState(BaseModel):
    """Base class of a saga's instance data (MassTransit's SagaStateMachineInstance).

    Subclass it with the fields the saga remembers. ``correlation_id`` and
    ``current_state`` are kept by the engine; read them, do not assign them.
    """

    model_config = ConfigDict(validate_assignment=False, extra="ignore")

    correlation_id: str = ""
    current_state: str = INITIAL.name

    def data(self) -> dict[str, Any]:
        """The fields to persist, without the engine-kept ones."""
        return self.model_dump(mode="json", exclude={"correlation_id", "current_state"})
