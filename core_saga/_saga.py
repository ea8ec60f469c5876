"""The Saga base class: declare states, events and behaviors on a subclass; it is
compiled into a SagaModel once, when the class is built."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from ._binder import DslUsageError, EventActivityBinder, IgnoreBinder, IgnoreOthers
from ._callables import MaybeAwaitable
from ._context import BehaviorContext
from ._errors import SagaDefinitionError
from ._events import Event, MissingInstance, Request, Schedule
from ._messages import Message
from ._model import Concurrency, SagaModel, Unhandled
from ._states import FINAL, INITIAL, SagaState, State

S = TypeVar("S", bound=SagaState)
M = TypeVar("M", bound=Message)

BehaviorSpec = EventActivityBinder[Any, Any] | IgnoreBinder[Any]
DuringSpec = BehaviorSpec | IgnoreOthers

_MEMBER_TYPES = (State, Event, Schedule, Request)


class _Definition:
    """What `define` declared, before compilation."""

    def __init__(self) -> None:
        self.blocks: list[tuple[tuple[State, ...] | None, tuple[DuringSpec, ...]]] = []
        self.completed_when_finalized = False
        self.completed_predicate: Callable[[Any], MaybeAwaitable[bool]] | None = None


class Saga(Generic[S]):
    """Base class of a saga state machine.

    Declare states (``State()``), events (``Event(MessageType, correlate_by=...)``),
    schedules and requests as class attributes, and write the behaviors in
    :meth:`define`::

        class OrderSaga(Saga[OrderState]):
            paid = State()
            submitted = Event(OrderSubmitted, correlate_by=lambda m: m.order_id)

            def define(self) -> None:
                self.initially(self.when(self.submitted).transition_to(self.paid))

    The class is compiled once into :attr:`model`; a definition error raises
    :class:`SagaDefinitionError` naming the saga, the state and the event.
    Create an instance with runtime settings (``OrderSaga(settings)``) to host it.

    A subclass may redeclare a state or event under the same attribute name: its
    member replaces the parent's, in the parent's behaviors too (they read
    ``self.member``).
    """

    model: ClassVar[SagaModel]
    state_type: ClassVar[type[SagaState]]
    saga_name: ClassVar[str] = ""
    """The saga type stored with each instance; defaults to the class name."""
    unhandled: ClassVar[Unhandled] = Unhandled.FAULT
    """What an event in a state with no behavior for it does."""
    concurrency: ClassVar[Concurrency] = Concurrency.OPTIMISTIC
    indexed: ClassVar[tuple[str, ...]] = ()
    """Instance fields kept searchable for `Query` correlation."""
    checks: ClassVar[bool] = True
    """Run the static checks when the class is built and raise on findings."""
    missing_instance: ClassVar[MissingInstance] = MissingInstance.FAULT
    """What an event that finds no instance (and does not start one) does, unless the
    event says otherwise with ``on_missing=``. FAULT by default; MassTransit's default
    is DISCARD (see docs/engine.md for why stepsaga's differs)."""
    settings_type: ClassVar[type[Any] | None] = None
    """When set, creating the saga without settings of this type raises
    SagaDefinitionError (rather than a behavior failing on ``None`` later)."""
    summary_columns: ClassVar[tuple[str, ...]] = ()
    """The columns :meth:`summary` fills, in the order lists of instances show them."""

    _definition: _Definition

    def __init__(self, settings: Any = None) -> None:
        wanted = type(self).settings_type
        if wanted is not None and not isinstance(settings, wanted):
            got = "no settings" if settings is None else f"a {type(settings).__name__}"
            raise SagaDefinitionError(
                type(self).saga_name or type(self).__name__,
                f"needs settings of type {wanted.__name__} and was given {got}: create it "
                f"as {type(self).__name__}({wanted.__name__}(...))")
        self.settings = settings

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "define", None) is Saga.define:
            return  # an abstract intermediate class
        cls.state_type = _state_type_of(cls)
        if not cls.__dict__.get("saga_name"):
            cls.saga_name = cls.__name__
        builder = cls.__new__(cls)
        builder._definition = _Definition()
        try:
            builder.define()
        except DslUsageError as exc:
            raise SagaDefinitionError(cls.saga_name, str(exc)) from exc
        except AttributeError as exc:
            if getattr(exc, "obj", None) is not builder or not exc.name:
                raise
            raise SagaDefinitionError(cls.saga_name, _unknown_member(cls, exc.name)) from exc
        from ._compile import compile_saga

        cls.model = compile_saga(cls, builder._definition)
        if cls.checks:
            from ._checks import check_model

            findings = check_model(cls.model)
            if findings:
                raise SagaDefinitionError(
                    cls.saga_name,
                    "static checks failed:\n  " + "\n  ".join(str(f) for f in findings),
                )

    def define(self) -> None:
        """Declare the behaviors with `initially`, `during` and `during_any`."""
        raise NotImplementedError

    @classmethod
    def summary(cls, state: Any) -> Mapping[str, Any]:
        """What a list of instances shows of one besides its id and state (the ops
        console's columns): override it with a few short values named as in
        :attr:`summary_columns`, e.g. ``{"Amount": "12.50 EUR", "Customer": "c-7"}``.
        It must not fail on any stored state; the default shows nothing."""
        return {}

    # -- the definition DSL, used inside define() --------------------------------

    def when(self, event: Event[M],
             filter: Callable[[BehaviorContext[S, M]], MaybeAwaitable[bool]] | None = None
             ) -> EventActivityBinder[S, M]:
        """Start a behavior for `event`; `filter` narrows which messages it applies to.
        A message that no behavior's filter accepts is an unhandled event."""
        return EventActivityBinder(event, filter)

    def ignore(self, event: Event[M],
               filter: Callable[[Any], MaybeAwaitable[bool]] | None = None
               ) -> IgnoreBinder[M]:
        """Consume `event` without effect in the enclosing states."""
        return IgnoreBinder(event, filter)

    def ignore_others(self) -> IgnoreOthers:
        """Inside ``during(...)``: consume without effect, in these states, every event
        that has no behavior there (and every message no filter there accepts)."""
        return IgnoreOthers()

    def initially(self, *behaviors: BehaviorSpec) -> None:
        """Behaviors for events that find no instance: they create one."""
        for item in behaviors:
            if isinstance(item, IgnoreOthers):
                raise SagaDefinitionError(
                    type(self).saga_name or type(self).__name__,
                    "ignore_others() does not apply in initially(): an event that starts "
                    "no instance follows the missing-instance policy", state=INITIAL.name)
        self._definition.blocks.append(((INITIAL,), behaviors))

    def during(self, *items: State | DuringSpec) -> None:
        """Behaviors in the given states: ``during(s1, s2, when(...), when(...))``;
        add ``self.ignore_others()`` to ignore every other event there."""
        name = type(self).saga_name or type(self).__name__
        states = tuple(i for i in items if isinstance(i, State))
        behaviors = tuple(i for i in items if not isinstance(i, State))
        if not states:
            raise SagaDefinitionError(name, "during() needs at least one state")
        if any(isinstance(i, State) for i in items[len(states):]):
            raise SagaDefinitionError(name, "during() takes the states first, then the behaviors")
        for item in behaviors:
            if not isinstance(item, EventActivityBinder | IgnoreBinder | IgnoreOthers):
                raise SagaDefinitionError(
                    name, f"during() takes states, then self.when(...), self.ignore(...) or "
                    f"self.ignore_others(); got {item!r}", state=states[0].name)
        self._definition.blocks.append((states, behaviors))

    def during_any(self, *behaviors: DuringSpec) -> None:
        """Behaviors in every declared state but Initial and Final."""
        self._definition.blocks.append((None, behaviors))

    def set_completed_when_finalized(self) -> None:
        """Remove an instance from the repository when it reaches Final."""
        self._definition.completed_when_finalized = True

    def set_completed(self, predicate: Callable[[S], MaybeAwaitable[bool]]) -> None:
        """Remove an instance from the repository when `predicate` holds for it (after
        each event; an ``async def`` is awaited)."""
        self._definition.completed_predicate = predicate

    # -- declared members ---------------------------------------------------------

    @classmethod
    def members(cls) -> dict[str, State | Event[Any] | Schedule[Any] | Request[Any, Any]]:
        """The declared states, events, schedules and requests by attribute name; a
        subclass's member replaces its parent's of the same name."""
        found: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, _MEMBER_TYPES):
                    found[name] = value
                else:
                    found.pop(name, None)  # redeclared as something else: no member
        return found

    @classmethod
    def declared(cls) -> tuple[list[State], list[Event[Any]], list[Schedule[Any]],
                               list[Request[Any, Any]]]:
        """The states, events, schedules and requests declared on the class."""
        states: list[State] = []
        events: list[Event[Any]] = []
        schedules: list[Schedule[Any]] = []
        requests: list[Request[Any, Any]] = []
        for value in cls.members().values():
            if isinstance(value, State):
                states.append(value)
            elif isinstance(value, Event):
                events.append(value)
            elif isinstance(value, Schedule):
                schedules.append(value)
                events.append(value.received)
            elif isinstance(value, Request):
                requests.append(value)
                states.append(value.pending)
                events.extend((value.completed, value.faulted, value.timeout_expired))
        return states, events, schedules, requests

    @classmethod
    def builtin_states(cls) -> tuple[State, State]:
        return INITIAL, FINAL


def _unknown_member(cls: type[Saga[Any]], name: str) -> str:
    members = cls.members()
    close = difflib.get_close_matches(name, list(members), n=1)
    hint = f"; did you mean self.{close[0]}?" if close else ""
    return (f"define() uses self.{name}, which is not declared on the class (declare it "
            f"as a class attribute: {name} = State() or Event(...){hint})")


def _state_type_of(cls: type) -> type[SagaState]:
    for base in getattr(cls, "__orig_bases__", ()):
        origin = typing.get_origin(base)
        if isinstance(origin, type) and issubclass(origin, Saga):
            args = typing.get_args(base)
            if args and isinstance(args[0], type) and issubclass(args[0], SagaState):
                return args[0]
    for klass in cls.__mro__[1:]:
        found = klass.__dict__.get("state_type")
        if isinstance(found, type) and issubclass(found, SagaState):
            return found
    raise SagaDefinitionError(cls.__name__,
                              "declare the instance type: class MySaga(Saga[MyState])")
