"""Compile a saga class and its definition into a SagaModel, checking it as it goes."""

from __future__ import annotations

import difflib
import re
import typing
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._activities import Activity, Catch, If, Retry, TransitionTo
from ._binder import EventActivityBinder, IgnoreBinder, IgnoreOthers
from ._callables import describe
from ._errors import SagaDefinitionError
from ._events import CompositeEvent, Event
from ._model import BehaviorModel, SagaModel, TransitionModel, Unhandled, iter_activities
from ._states import FINAL, INITIAL, pascal_case

if TYPE_CHECKING:
    from ._saga import Saga, _Definition

MAX_EDGE_PATHS = 64
"""Beyond this many ways through one behavior, its edges carry the filter only."""


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name.replace(".", "_")).lower()


def _suggest(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _edge_paths(activities: Sequence[Activity]) -> list[tuple[tuple[str, ...], list[str]]]:
    """Each way through `activities`: the conditions taken on it (``if`` branches by
    the predicate's name, ``not name`` for the other branch, ``catch X`` for a handler)
    and the states it moves to, in order."""
    paths: list[tuple[tuple[str, ...], list[str]]] = [((), [])]
    for activity in activities:
        alternatives: list[tuple[tuple[str, ...], list[str]]]
        if isinstance(activity, If):
            condition = activity.condition()
            alternatives = (
                [((condition, *c), t) for c, t in _edge_paths(activity.then)]
                + [((f"not {condition}", *c), t) for c, t in _edge_paths(activity.otherwise)])
        elif isinstance(activity, Catch):
            caught = "catch " + "|".join(t.__name__ for t in activity.exception_types)
            alternatives = [((), []), *(((caught, *c), t)
                                        for c, t in _edge_paths(activity.activities))]
        elif isinstance(activity, Retry):
            alternatives = _edge_paths(activity.activities)
        else:
            alternatives = [((), [s.name for s in activity.target_states()])]
        paths = [((*c1, *c2), [*t1, *t2]) for c1, t1 in paths for c2, t2 in alternatives]
        if len(paths) > MAX_EDGE_PATHS:
            targets = [t.name for a in iter_activities(list(activities))
                       for t in a.target_states()]
            return [((), targets)]
    return paths


def _is_str_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return origin in (list, set, frozenset) and typing.get_args(annotation) in ((str,), ())


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
    events_by_name = {e.name: e for e in events}
    fields = cls.state_type.model_fields
    terminal = {FINAL.name} | {s.name for s in states if getattr(s, "terminal", False)}

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

    # Composite events: their components by name, so a subclass's override counts.
    composites: dict[str, tuple[str, ...]] = {}
    for composite in (e for e in events if isinstance(e, CompositeEvent)):
        field_info = fields.get(composite.status_field)
        if field_info is None or not _is_str_list(field_info.annotation):
            fail(f"composite event keeps the events that arrived in field "
                 f"{composite.status_field!r}: declare it on {cls.state_type.__name__} as "
                 f"`{composite.status_field}: list[str] = []`", event=composite.name)
        parts: list[str] = []
        for component in composite.events:
            if component.name not in events_by_name or isinstance(
                    events_by_name[component.name], CompositeEvent):
                fail(f"combines {component!r}, which is not an event declared on the class",
                     event=composite.name)
            parts.append(component.name)
        if len(set(parts)) != len(parts):
            fail(f"combines an event twice: {parts}", event=composite.name)
        composites[composite.name] = tuple(parts)

    by_urn: dict[str, list[Event[Any]]] = defaultdict(list)
    for event in events:
        if not isinstance(event, CompositeEvent):
            by_urn[event.message_type.message_urn].append(event)
    for urn, group in by_urn.items():
        plain = [e for e in group if e.discriminator is None]
        if len(plain) > 1:
            fail(f"message type {urn} is bound to more than one event: "
                 f"{[e.name for e in plain]}")

    def resolve_targets(activities: Sequence[Activity], sources: list[str],
                        event_name: str) -> None:
        declared = {s.name: s for s in (INITIAL, *states, FINAL)}
        for activity in iter_activities(activities):
            if isinstance(activity, TransitionTo) and activity.state.owner == "?":
                wanted = activity.state.name
                found = declared.get(wanted) or declared.get(pascal_case(wanted))
                if found is not None:
                    activity.state = found
            for target in activity.target_states():
                if target.name not in known_states:
                    fail(f"transition to undeclared state {target.name!r}"
                         f"{_suggest(target.name, state_names)}; declare it on the class "
                         f"({_snake(target.name)} = State()) or fix the name",
                         state=sources[0], event=event_name)

    ignore_others: set[str] = set()
    collected: dict[tuple[str, str], list[BehaviorModel]] = defaultdict(list)
    origins: dict[tuple[str, str], list[tuple[int, bool, bool]]] = defaultdict(list)
    any_blocks: list[tuple[int, BehaviorModel]] = []
    middle_states = [s for s in state_names if s not in (INITIAL.name, FINAL.name)]
    for block, (block_states, specs) in enumerate(definition.blocks):
        for spec in specs:
            if isinstance(spec, IgnoreOthers):
                if block_states is None:
                    ignore_others.update(middle_states)
                else:
                    ignore_others.update(s.name for s in block_states)
                continue
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
                    fail("during() names a state that is not declared on the class"
                         f"{_suggest(state.name, state_names)}",
                         state=state.name, event=event.name)
            source_names = [s.name for s in block_states] if block_states else ["*"]
            if isinstance(event, CompositeEvent) and INITIAL.name in source_names:
                fail("a composite event cannot start an instance: put the events it "
                     "combines in initially() and handle the composite in a later state",
                     state=INITIAL.name, event=event.name)
            resolve_targets(activities, source_names, event.name)
            for source in source_names:
                behavior = BehaviorModel(source, event.name, activities, spec.filter, ignore)
                if block_states is None:
                    any_blocks.append((block, behavior))
                else:
                    collected[(source, event.name)].append(behavior)
                    origins[(source, event.name)].append((block, ignore, spec.filter is None))

    # during_any applies to every state but Initial and Final, after the state's own.
    for block, behavior in any_blocks:
        for state_name in middle_states:
            collected[(state_name, behavior.event)].append(
                BehaviorModel(state_name, behavior.event, behavior.activities,
                              behavior.filter, behavior.ignore, from_any=True)
            )
            origins[(state_name, behavior.event)].append(
                (block, behavior.ignore, behavior.filter is None))

    # An ignore and a when for one event in one state: which applies must not depend
    # on the order of blocks, and nothing may hide behind an unfiltered ignore.
    for (state_name, event_name), found in origins.items():
        kinds = {ignore for _, ignore, _ in found}
        if kinds == {True, False} and len({b for b, _, _ in found}) > 1:
            fail("the event is both handled (when) and ignored (ignore) in this state, in "
                 "different during()/during_any() blocks, so their order would decide: keep "
                 "one; to ignore only what the filters of when(..., filter=) leave, put the "
                 "ignore last in the same during()", state=state_name, event=event_name)
        for index, (_, ignore, unfiltered) in enumerate(found[:-1]):
            if unfiltered and ignore:
                fail("a behavior follows an unfiltered ignore() of the same event in this "
                     "state and would never run: remove one, or give the ignore a filter",
                     state=state_name, event=event_name)
            if unfiltered and not ignore and found[index + 1][1]:
                fail("ignore() after an unfiltered when() of the same event in this state "
                     "never applies: remove it", state=state_name, event=event_name)

    # Composite tracking: in every state but Initial and the end states (by default),
    # after the state's own behaviors for the component.
    trackers: dict[tuple[str, str], list[CompositeEvent]] = defaultdict(list)
    for composite_name, components in composites.items():
        combined = events_by_name[composite_name]
        assert isinstance(combined, CompositeEvent)
        for state_name in state_names:
            if state_name == INITIAL.name and not combined.include_initial:
                continue
            if state_name in terminal and not combined.include_final:
                continue
            for component_name in components:
                trackers[(state_name, component_name)].append(combined)

    transitions: list[TransitionModel] = []
    seen_edges: set[tuple[str, str, str, str]] = set()
    for (source_name, event_name), behaviors in collected.items():
        for behavior in behaviors:
            if behavior.ignore:
                continue
            guard_filter = describe(behavior.filter, "filter") if behavior.filter else ""
            for conditions, targets in _edge_paths(behavior.activities):
                guard = ", ".join(c for c in (guard_filter, *conditions) if c)
                target_name = targets[-1] if targets else source_name
                key = (source_name, event_name, target_name, guard)
                if key not in seen_edges:
                    seen_edges.add(key)
                    transitions.append(TransitionModel(source_name, event_name, target_name,
                                                       guard, from_any=behavior.from_any))

    initial_events = frozenset(
        {e for (s, e) in collected if s == INITIAL.name}
        | {e for (s, e) in trackers if s == INITIAL.name})
    for event in events:
        if event.select_id is not None and event.name not in initial_events:
            fail("select_id= gives the id of the instance an initial event creates, but "
                 "this event is not in initially()", event=event.name)
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
        missing_instance=cls.missing_instance,
        unhandled_in={s: Unhandled.IGNORE for s in ignore_others},
        composites=composites,
        trackers={key: tuple(value) for key, value in trackers.items()},
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
