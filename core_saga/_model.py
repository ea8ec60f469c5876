"""The compiled model of a saga: built once from the class, read by the engine, the
static checks and the graph renderers. Nothing here is re-derived per message."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._activities import Activity
from ._callables import MaybeAwaitable, resolve
from ._events import CompositeEvent, Event, MissingInstance, Request, Schedule
from ._states import FINAL, INITIAL, SagaState


class Unhandled(enum.Enum):
    """What happens to an event that arrives in a state with no behavior for it."""

    FAULT = "fault"
    """The message faults with UnhandledEventError (the default, as MassTransit)."""
    IGNORE = "ignore"
    """The message is consumed and dropped, with a log line."""


class Concurrency(enum.Enum):
    """How two messages for one instance are kept from overwriting each other."""

    OPTIMISTIC = "optimistic"
    """A version column; on conflict the message is reloaded and re-run."""
    PESSIMISTIC = "pessimistic"
    """The row is locked while the behavior runs (SELECT … FOR UPDATE)."""


@dataclass(frozen=True, slots=True)
class BehaviorModel:
    """The activities for one event in one state."""

    state: str
    event: str
    activities: tuple[Activity, ...]
    filter: Callable[[Any], MaybeAwaitable[bool]] | None = None
    ignore: bool = False
    from_any: bool = False
    """Declared with ``during_any`` (it applies in every state)."""


@dataclass(frozen=True, slots=True)
class TransitionModel:
    """An edge of the state graph: `source` --event--> `target`."""

    source: str
    event: str
    target: str
    guard: str = ""
    """Why this edge is taken, when not always: the behavior's filter and the branches
    of ``if_``/``if_else`` on the way, by function name (or docstring), ``not x`` for an
    else branch; "" when the edge is unconditional."""
    from_any: bool = False
    """The edge comes from a ``during_any`` behavior (graphs fold these)."""

    @property
    def label(self) -> str:
        """The event, with the guard in brackets when there is one."""
        return f"{self.event} [{self.guard}]" if self.guard else self.event


@dataclass(frozen=True, slots=True)
class SagaModel:
    """A saga class compiled into states, events, behaviors and transitions."""

    name: str
    state_type: type[SagaState]
    states: tuple[str, ...]
    terminal_states: frozenset[str]
    events: Mapping[str, Event[Any]]
    events_by_urn: Mapping[str, tuple[Event[Any], ...]]
    behaviors: Mapping[tuple[str, str], tuple[BehaviorModel, ...]]
    initial_events: frozenset[str]
    transitions: tuple[TransitionModel, ...]
    schedules: tuple[Schedule[Any], ...]
    requests: tuple[Request[Any, Any], ...]
    indexed: tuple[str, ...]
    completed_when_finalized: bool
    completed_predicate: Callable[[Any], MaybeAwaitable[bool]] | None
    unhandled: Unhandled
    concurrency: Concurrency
    message_types: frozenset[str] = field(default=frozenset())
    missing_instance: MissingInstance = MissingInstance.FAULT
    """The class's policy for an event that finds no instance (an event's own wins)."""
    unhandled_in: Mapping[str, Unhandled] = field(default_factory=dict)
    """States with their own unhandled policy (``ignore_others()``)."""
    composites: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Each composite event's name and the names of the events it combines."""
    trackers: Mapping[tuple[str, str], tuple[CompositeEvent, ...]] = field(
        default_factory=dict)
    """(state, event) -> the composite events that count the event's arrival there."""
    summary_columns: tuple[str, ...] = ()
    """The columns of :meth:`summary` (``Saga.summary_columns``), in order."""
    summarize: Callable[[Any], Mapping[str, Any]] | None = None
    """``Saga.summary``, when the class declares one."""

    def summary(self, data: Mapping[str, Any]) -> dict[str, str]:
        """The columns a list of instances shows for one (the ops console), from its
        stored data: ``Saga.summary`` of the parsed state, as text. Empty when the saga
        declares none, or the data no longer parses (an older version's instance)."""
        if self.summarize is None:
            return {}
        try:
            found = self.summarize(self.state_type.model_validate(data))
        except Exception:
            return {}
        return {str(k): "" if v is None else str(v) for k, v in found.items()}

    def lookup(self, state: str, event: str) -> tuple[BehaviorModel, ...] | None:
        """The behaviors for `event` in `state`, or None when the state has none."""
        return self.behaviors.get((state, event))

    def unhandled_policy(self, state: str) -> Unhandled:
        """What an unhandled event does in `state`."""
        return self.unhandled_in.get(state, self.unhandled)

    async def is_completed(self, instance: SagaState) -> bool:
        """Whether `instance` is complete and is to be removed from the repository."""
        if self.completed_when_finalized and instance.current_state == FINAL.name:
            return True
        if self.completed_predicate is None:
            return False
        return bool(await resolve(self.completed_predicate(instance)))

    def event_for(self, urn: str, message: Any) -> Event[Any] | None:
        """The event a message of type `urn` is, or None when the saga has none."""
        candidates = self.events_by_urn.get(urn)
        if not candidates:
            return None
        for event in candidates:
            if event.discriminator is None or event.discriminator(message):
                return event
        return None

    def walk(self) -> Iterator[tuple[BehaviorModel, Activity]]:
        """Every activity of every behavior, branches included."""
        for behaviors in self.behaviors.values():
            for behavior in behaviors:
                for activity in iter_activities(behavior.activities):
                    yield behavior, activity


def iter_activities(activities: Sequence[Activity]) -> Iterator[Activity]:
    """`activities` and everything nested in them, depth first."""
    for activity in activities:
        yield activity
        for branch in activity.branches():
            yield from iter_activities(branch)


BUILTIN_STATES = (INITIAL.name, FINAL.name)
