"""Compile a saga class and its definition into a SagaModel, checking it as it goes."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ._activities import Activity
from ._binder import EventActivityBinder, IgnoreBinder
from ._errors import SagaDefinitionError
from ._events import Event
from ._model import BehaviorModel, SagaModel, TransitionModel, iter_activities
from ._states import FINAL, INITIAL

if TYPE_CHECKING:
    from ._saga import Saga, _Definition


def compile_saga(cls: type[Saga[Any]], definition: _Definition) -> SagaModel:
    """Build the model of `cls`; SagaDefinitionError on the first problem found."""
    name = cls.saga_name
    states, events, schedules, requests = cls.declared()
    state_names = [INITIAL.name] + [s.name for s in states] + [FINAL.name]
    if len(set(state_names)) != len(state_names):
        dupes = sorted({s for s in state_names if state_names.count(s) > 1})
        raise SagaDefinitionError(name, f"state names declared twice: {dupes}")
    known_states = set(state_names)
    known_events = {id(e): e for e in events}
    fields = cls.state_type.model_fields

    def fail(problem: str, *, state: str | None = None, event: str | None = None) -> None:
        raise SagaDefinitionError(name, problem, state=state, event=event)

    for schedule in schedules:
        if schedule.token_field not in fields:
            fail(f"schedule {schedule.name!r} keeps its token in field "
                 f"{schedule.token_field!r}, which {cls.state_type.__name__} does not have")
    for request in requests:
        if request.request_id_field not in fields:
            fail(f"request {request.name!r} keeps its id in field "
                 f"{request.request_id_field!r}, which {cls.state_type.__name__} does not have")
    for field_name in cls.indexed:
        if field_name not in fields:
            fail(f"indexed field {field_name!r} is not a field of {cls.state_type.__name__}")

    by_urn: dict[str, list[Event[Any]]] = defaultdict(list)
    for event in events:
        by_urn[event.message_type.message_urn].append(event)
    for urn, group in by_urn.items():
        plain = [e for e in group if e.discriminator is None]
        if len(plain) > 1:
            fail(f"message type {urn} is bound to more than one event: "
                 f"{[e.name for e in plain]}")

    collected: dict[tuple[str, str], list[BehaviorModel]] = defaultdict(list)
    any_blocks: list[BehaviorModel] = []
    for block_states, specs in definition.blocks:
        for spec in specs:
            event = spec.event
            if id(event) not in known_events:
                where = block_states[0].name if block_states else None
                fail(f"a behavior is bound to an event not declared on the class: {event!r}",
                     state=where, event=event.name or None)
            if not event.has_correlation:
                fail(f"event has no correlation: give correlate_by=..., query=..., or a "
                     f"correlation_id field on {event.message_type.__name__}",
                     event=event.name)
            if isinstance(spec, IgnoreBinder):
                activities: tuple[Activity, ...] = ()
                ignore = True
            else:
                assert isinstance(spec, EventActivityBinder)
                activities = tuple(spec.activities)
                ignore = False
            for state in block_states or ():
                if state.name not in known_states:
                    fail("during() names a state that is not declared on the class",
                         state=state.name, event=event.name)
            source_names = [s.name for s in block_states] if block_states else ["*"]
            for activity in iter_activities(activities):
                for target in activity.target_states():
                    if target.name not in known_states:
                        for source in source_names:
                            fail(f"transition to undeclared state {target.name!r}",
                                 state=source, event=event.name)
            for source in source_names:
                behavior = BehaviorModel(source, event.name, activities, spec.filter, ignore)
                if block_states is None:
                    any_blocks.append(behavior)
                else:
                    collected[(source, event.name)].append(behavior)

    # during_any applies to every state but Initial and Final, after the state's own.
    for behavior in any_blocks:
        for state_name in state_names:
            if state_name in (INITIAL.name, FINAL.name):
                continue
            collected[(state_name, behavior.event)].append(
                BehaviorModel(state_name, behavior.event, behavior.activities,
                              behavior.filter, behavior.ignore, from_any=True)
            )

    transitions: list[TransitionModel] = []
    seen_edges: set[tuple[str, str, str, str]] = set()
    for (source_name, event_name), behaviors in collected.items():
        for behavior in behaviors:
            targets = [t.name for a in iter_activities(behavior.activities)
                       for t in a.target_states()]
            guard = getattr(behavior.filter, "__name__", "") if behavior.filter else ""
            guard = "" if guard == "<lambda>" else guard.lstrip("_")
            for target_name in targets or ([] if behavior.ignore else [source_name]):
                key = (source_name, event_name, target_name, guard)
                if key not in seen_edges:
                    seen_edges.add(key)
                    transitions.append(TransitionModel(source_name, event_name, target_name,
                                                       guard, from_any=behavior.from_any))

    terminal = {FINAL.name} | {s.name for s in states if getattr(s, "terminal", False)}
    initial_events = frozenset(e for (s, e) in collected if s == INITIAL.name)
    return SagaModel(
        name=name,
        state_type=cls.state_type,
        states=tuple(state_names),
        terminal_states=frozenset(terminal),
        events={e.name: e for e in events},
        events_by_urn={urn: tuple(group) for urn, group in by_urn.items()},
        behaviors={key: tuple(value) for key, value in collected.items()},
        initial_events=initial_events,
        transitions=tuple(transitions),
        schedules=tuple(schedules),
        requests=tuple(requests),
        indexed=tuple(cls.indexed),
        completed_when_finalized=definition.completed_when_finalized,
        completed_predicate=definition.completed_predicate,
        unhandled=cls.unhandled,
        concurrency=cls.concurrency,
        message_types=frozenset(by_urn),
        summary_columns=tuple(cls.summary_columns),
        summarize=cls.summary if "summary" in _overrides(cls) else None,
    )


def _overrides(cls: type[Any]) -> set[str]:
    """The names defined by `cls` or a base class below ``Saga``."""
    from ._saga import Saga

    found: set[str] = set()
    for klass in cls.__mro__:
        if klass is Saga:
            break
        found |= set(vars(klass))
    return found
