"""Message contracts: pydantic models with a versioned URN, and the registry from URN to type."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from ._errors import InvalidMessageError, UnknownMessageTypeError


class Message(BaseModel):
    """Base class of every message (event or command).

    Fields are snake_case in Python and camelCase on the wire. The message type is
    the URN ``urn:message:<namespace>:<ClassName>:v<version>``; set the class
    variables ``message_namespace`` and ``message_version`` to control it, or
    ``message_urn`` to give it outright.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )

    message_namespace: ClassVar[str | None] = None
    message_version: ClassVar[int] = 1
    message_urn: ClassVar[str] = ""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # A subclass inherits message_urn from its parent: derive unless it set its own.
        own_urn = cls.__dict__.get("message_urn")
        if not own_urn:
            namespace = cls.__dict__.get("message_namespace") or cls.message_namespace
            if not namespace and cls.__module__ == "__main__":
                # A script run as ``python app.py`` names its module __main__, the worker
                # that imports it names it app: the two would never read each other.
                raise TypeError(
                    f"message {cls.__name__} is defined in __main__, so its type would be "
                    f"urn:message:__main__:{cls.__name__}:v{cls.message_version}, a name "
                    "another process importing this module would not share; set "
                    "message_namespace = 'your.app' on it (or a base class), or define it "
                    "in an importable module")
            cls.message_urn = (
                f"urn:message:{namespace or cls.__module__}:{cls.__name__}:v{cls.message_version}"
            )
        registry.register(cls)

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict of this message, camelCase keys."""
        return self.model_dump(mode="json", by_alias=True)


class MessageRegistry:
    """Maps message-type URNs to the classes that read them."""

    def __init__(self) -> None:
        self._types: dict[str, type[Message]] = {}

    def register(self, message_type: type[Message]) -> None:
        """Register `message_type` under its URN; a second, different class is an error."""
        urn = message_type.message_urn
        existing = self._types.get(urn)
        if existing is not None and existing is not message_type:
            if (existing.__module__, existing.__qualname__) == (
                message_type.__module__,
                message_type.__qualname__,
            ):
                # The same class defined again (module reloaded): the newest wins.
                self._types[urn] = message_type
                return
            raise ValueError(
                f"message type {urn} is already registered by "
                f"{existing.__module__}.{existing.__qualname__}"
            )
        self._types[urn] = message_type

    def get(self, urn: str) -> type[Message] | None:
        """The class registered under `urn`, or None."""
        return self._types.get(urn)

    def resolve(self, urn: str, *, message_id: str | None = None) -> type[Message]:
        """The class registered under `urn`; UnknownMessageTypeError if none is."""
        found = self._types.get(urn)
        if found is None:
            raise UnknownMessageTypeError(
                f"unknown message type {urn!r}", message_id=message_id
            )
        return found

    def parse(self, urn: str, payload: Any, *, message_id: str | None = None) -> Message:
        """Validate `payload` as the message type `urn`; typed errors say what was wrong."""
        message_type = self.resolve(urn, message_id=message_id)
        try:
            return message_type.model_validate(payload)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
                for err in exc.errors()
            )
            raise InvalidMessageError(
                f"invalid {urn}: {problems}", message_id=message_id
            ) from exc

    def __contains__(self, urn: object) -> bool:
        return urn in self._types


registry = MessageRegistry()
"""The process-wide registry every Message subclass joins when it is defined."""


class ExceptionInfo(BaseModel):
    """What went wrong, as carried in a Fault."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)
    exception_type: str
    message: str


class Fault(Message):
    """Published to a request's fault address when a consumer could not handle it."""

    message_urn: ClassVar[str] = "urn:message:stepsaga:Fault:v1"
    fault_id: str
    faulted_message_id: str
    faulted_message_type: str
    exceptions: list[ExceptionInfo]
    message: dict[str, Any]


class RequestTimeoutExpired(Message):
    """Delivered to a saga when a request got no response within its timeout."""

    message_urn: ClassVar[str] = "urn:message:stepsaga:RequestTimeoutExpired:v1"
    request_id: str
    request_type: str
