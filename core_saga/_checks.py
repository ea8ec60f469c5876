"""Static checks over a compiled saga model. Each finding names saga, state and event."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ._activities import Activity, Catch, If, Retry, ScheduleMessage, Send, SendRequest, Unschedule
from ._errors import SagaDefinitionError
from ._model import BehaviorModel, SagaModel, iter_activities
from ._states import INITIAL


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem the static checks found."""

    saga: str
    state: str | None
    event: str | None
    problem: str

    def __str__(self) -> str:
        where = f"saga {self.saga!r}"
        if self.state is not None:
            where += f", state {self.state!r}"
        if self.event is not None:
            where += f", event {self.event!r}"
        return f"{where}: {self.problem}"


MAX_PATHS = 256
"""Beyond this many paths through one behavior, the checks look at all its activities at
once (coarser: a branch's transition and another branch's unschedule are mixed)."""


def _paths(activities: tuple[Activity, ...] | list[Activity]) -> list[tuple[Activity, ...]]:
    """Every way through `activities`: each ``if`` takes one branch, a ``catch`` runs or
    not, a ``retry``'s body runs once. None when there are too many."""
    paths: list[tuple[Activity, ...]] = [()]
    for activity in activities:
        alternatives: list[tuple[Activity, ...]]
        if isinstance(activity, If):
            alternatives = _paths(activity.then) + _paths(activity.otherwise)
        elif isinstance(activity, Catch):
            alternatives = [(), *_paths(activity.activities)]
        elif isinstance(activity, Retry):
            alternatives = _paths(activity.activities)
        else:
            alternatives = [()]
        paths = [(*p, activity, *alt) for p in paths for alt in alternatives]
        if len(paths) > MAX_PATHS:
            return [tuple(iter_activities(list(activities)))]
    return paths


def _targets(path: tuple[Activity, ...]) -> list[str]:
    return [t.name for a in path for t in a.target_states()]


def check_model(model: SagaModel) -> list[Finding]:
    """Run every check on `model` and return the findings (empty when it is sound)."""
    return [
        *_check_reaches_final(model),
        *_check_requests(model),
        *_check_schedules(model),
        *_check_compensation(model),
        *_check_composites(model),
    ]


def _check_reaches_final(model: SagaModel) -> list[Finding]:
    edges: dict[str, set[str]] = defaultdict(set)
    for t in model.transitions:
        edges[t.source].add(t.target)
    # Walk backwards from the terminal states.
    reverse: dict[str, set[str]] = defaultdict(set)
    for source, targets in edges.items():
        for target in targets:
            reverse[target].add(source)
    can_finish = set(model.terminal_states)
    frontier = list(can_finish)
    while frontier:
        state = frontier.pop()
        for source in reverse[state]:
            if source not in can_finish:
                can_finish.add(source)
                frontier.append(source)
    reachable = {INITIAL.name}
    frontier = [INITIAL.name]
    while frontier:
        for target in edges[frontier.pop()]:
            if target not in reachable:
                reachable.add(target)
                frontier.append(target)
    pending = {r.pending.name for r in model.requests}
    findings = []
    for state in model.states:
        if state in can_finish or (state in pending and state not in reachable):
            continue
        if state == INITIAL.name and not model.initial_events:
            continue
        findings.append(Finding(model.name, state, None,
                                "no path from this state reaches a final state "
                                "(finalize, or a State(terminal=True))"))
    return findings


def _check_requests(model: SagaModel) -> list[Finding]:
    handled: dict[str, set[str]] = defaultdict(set)
    for (state, event), behaviors in model.behaviors.items():
        if any(not b.ignore for b in behaviors):
            handled[event].add(state)
    entered = {t.target for t in model.transitions}
    findings = []
    for behavior, activity in model.walk():
        if not isinstance(activity, SendRequest):
            continue
        request = activity.request
        needed = [request.completed, request.faulted]
        if request.timeout is not None:
            needed.append(request.timeout_expired)
        for event in needed:
            if event.name not in handled:
                findings.append(Finding(model.name, behavior.state, event.name,
                                        f"request {request.name!r} is sent here but "
                                        f"{event.name!r} is handled in no state"))
        pending = request.pending.name
        waits_in = handled.get(request.completed.name, set())
        if waits_in == {pending} and pending not in entered:
            finding = Finding(
                model.name, behavior.state, None,
                f"request {request.name!r} is answered only in {pending!r}, which no "
                f"behavior enters: add .transition_to(self.{_attr(request.name)}.pending) "
                "after .request(...)")
            if finding not in findings:
                findings.append(finding)
    return findings


def _attr(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _check_composites(model: SagaModel) -> list[Finding]:
    handled = {event for (_, event), behaviors in model.behaviors.items()
               if any(not b.ignore for b in behaviors)}
    return [Finding(model.name, None, name,
                    f"composite event of {list(parts)} is handled in no state: add "
                    f"self.when(self.{_attr(name)}) to a during()")
            for name, parts in model.composites.items() if name not in handled]


def _touches(path: tuple[Activity, ...], schedule: Any) -> bool:
    return any(isinstance(a, Unschedule | ScheduleMessage) and a.schedule is schedule
               for a in path)


def _check_schedules(model: SagaModel) -> list[Finding]:
    by_state: dict[str, list[BehaviorModel]] = defaultdict(list)
    for (state, _), behaviors in model.behaviors.items():
        by_state[state].extend(behaviors)
    findings: list[Finding] = []
    for schedule in model.schedules:
        received = schedule.received.name
        handles = {s for s, bs in by_state.items() if any(b.event == received for b in bs)}
        active: list[str] = []
        for behaviors in model.behaviors.values():
            for behavior in behaviors:
                for path in _paths(behavior.activities):
                    if any(isinstance(a, ScheduleMessage) and a.schedule is schedule
                           for a in path):
                        active.append((_targets(path) or [behavior.state])[-1])
        seen: set[str] = set()
        while active:
            state = active.pop()
            if state in seen:
                continue
            seen.add(state)
            if state not in handles:
                findings.append(Finding(model.name, state, received,
                                        f"timer {schedule.name!r} can be pending here but "
                                        "this state does not handle it"))
                continue
            for behavior in by_state[state]:
                if behavior.event == received:
                    continue
                for path in _paths(behavior.activities):
                    targets = _targets(path)
                    if _touches(path, schedule) or not targets or targets[-1] == state:
                        continue
                    target = targets[-1]
                    if target in model.terminal_states:
                        finding = Finding(model.name, state, behavior.event,
                                          f"leaves for {target!r} with timer "
                                          f"{schedule.name!r} still pending: unschedule it")
                        if finding not in findings:
                            findings.append(finding)
                    else:
                        active.append(target)
    return findings


def _check_compensation(model: SagaModel) -> list[Finding]:
    sent = {t for _, a in model.walk() for t in a.sent_types()}
    findings = []
    for behavior, activity in model.walk():
        if not isinstance(activity, Send):
            continue
        if activity.compensable and activity.compensation is None:
            findings.append(Finding(model.name, behavior.state, behavior.event,
                                    f"{activity.label()} is marked compensable but names "
                                    "no compensation"))
        elif activity.compensation is not None and activity.compensation not in sent:
            findings.append(Finding(
                model.name, behavior.state, behavior.event,
                f"{activity.label()} names compensation "
                f"{activity.compensation.__name__}, which the saga never sends "
                "(declare message_type= on the activity that sends it)"))
    return findings


def check_saga(saga: type[Any]) -> list[Finding]:
    """The findings of the static checks for a saga class (a test helper)."""
    return check_model(saga.model)


def assert_saga_valid(saga: type[Any]) -> None:
    """Raise SagaDefinitionError listing every finding, if there is any."""
    findings = check_saga(saga)
    if findings:
        raise SagaDefinitionError(saga.model.name, "static checks failed:\n  "
                                  + "\n  ".join(str(f) for f in findings))
