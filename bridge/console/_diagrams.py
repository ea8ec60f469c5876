"""The two graphs of an order: its saga (from the compiled model and its history) and
each Step Functions execution (from the state machine's definition and the execution's
history), as :class:`Diagram` objects for :func:`render_svg`.

Both mark the current state and the path taken. A saga graph folds what would clutter
it: a state's self-loops become a note on the state ("stays on: 3 events"), and the
behaviors declared with ``during_any`` become one "any state" node (for the moves they
make) or a footnote (for what they only record).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from core_saga import FINAL, INITIAL, SagaModel

from ._layout import Diagram, Edge, Node

ANY_STATE = "(any state)"


def _taken(path: Sequence[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(path))


def saga_diagram(model: SagaModel, *, current: str | None = None,
                 path: Sequence[str] = ()) -> Diagram:
    """The saga's states and moves, `current` and the `path` taken marked."""
    used = {t.source for t in model.transitions} | {t.target for t in model.transitions}
    states = [s for s in model.states if s != FINAL.name or s in used]
    visited = set(path)
    taken = _taken(path)
    loops: dict[str, list[str]] = {}
    labels: dict[tuple[str, str], list[str]] = {}
    anywhere: dict[str, list[str]] = {}
    recorded: list[str] = []
    for t in model.transitions:
        if t.from_any:
            if t.target == t.source:
                if t.label not in recorded:
                    recorded.append(t.label)
            else:
                names = anywhere.setdefault(t.target, [])
                if t.label not in names:
                    names.append(t.label)
            continue
        if t.source == t.target:
            loops.setdefault(t.source, [])
            if t.label not in loops[t.source]:
                loops[t.source].append(t.label)
            continue
        names = labels.setdefault((t.source, t.target), [])
        if t.label not in names:
            names.append(t.label)
    nodes = []
    for state in states:
        classes = []
        if state == current:
            classes.append("current")
        elif state in visited:
            classes.append("visited")
        if state in model.terminal_states:
            classes.append("final")
        if state == INITIAL.name:
            classes.append("start")
        stays = loops.get(state, [])
        note = (f"stays on: {stays[0]}" if len(stays) == 1 else
                f"stays on: {len(stays)} events" if stays else "")
        nodes.append(Node(state, state, tuple(classes), note=note,
                          title="stays in the state on: " + ", ".join(stays) if stays else ""))
    edges = [Edge(a, b, _join(names), ("taken",) if (a, b) in taken else ())
             for (a, b), names in labels.items()]
    if anywhere:
        nodes.append(Node(ANY_STATE, ANY_STATE, ("folded",),
                          title="behaviors declared with during_any"))
        edges += [Edge(ANY_STATE, target, _join(names)) for target, names in anywhere.items()]
    footnotes = [f"in every state: {', '.join(recorded)} (recorded, no move)"] if recorded \
        else []
    return Diagram(f"{model.name} state graph", nodes, edges, start=INITIAL.name,
                   footnotes=footnotes)


def _join(names: Sequence[str], limit: int = 2, width: int = 44) -> str:
    """An edge's label: its events (guards of one event together), a few of them, then
    how many more; clipped to `width` characters."""
    grouped: dict[str, list[str]] = {}
    for name in names:
        event, _, guard = name.partition(" [")
        grouped.setdefault(event, [])
        if guard:
            grouped[event].append(guard.rstrip("]"))
    parts = [f"{event} [{' | '.join(guards)}]" if guards else event
             for event, guards in grouped.items()]
    shown = " / ".join(parts[:limit])
    more = f" +{len(parts) - limit}" if len(parts) > limit else ""
    if len(shown) + len(more) > width:
        shown = shown[:width - len(more) - 1] + "…"
    return shown + more


START = "(start)"
END = "(end)"


def asl_diagram(definition: Mapping[str, Any], *, entered: Sequence[str] = (),
                current: str | None = None, status: str | None = None,
                title: str = "execution") -> Diagram:
    """A state machine's states and transitions (``Next``, ``Default``, ``Choices``,
    ``Catch``; ``End`` to an end node), the states the execution `entered` marked and
    its `current` one highlighted. Parallel and Map states are one node each."""
    states: Mapping[str, Any] = definition.get("States") or {}
    path = [START, *entered]
    if status is not None and status != "RUNNING" and entered:
        path.append(END)
    visited = set(path)
    taken = _taken(path)
    nodes = [Node(START, "start", ("start", "visited"))]
    edges: list[Edge] = []
    start_at = definition.get("StartAt")
    if isinstance(start_at, str):
        edges.append(Edge(START, start_at, "", ("taken",) if (START, start_at) in taken
                          else ()))
    ends = False
    for name, state in states.items():
        if not isinstance(state, Mapping):
            continue
        kind = str(state.get("Type", ""))
        classes = [f"asl-{kind.lower()}"] if kind else []
        if name == current:
            classes.append("current")
        elif name in visited:
            classes.append("visited")
        if kind in ("Succeed", "Fail"):
            classes.append("final")
        nodes.append(Node(name, name, tuple(classes), title=f"{kind} state"))
        targets: list[tuple[str, str]] = []
        if isinstance(state.get("Next"), str):
            targets.append((state["Next"], ""))
        for choice in state.get("Choices") or ():
            if isinstance(choice, Mapping) and isinstance(choice.get("Next"), str):
                targets.append((choice["Next"], "choice"))
        if isinstance(state.get("Default"), str):
            targets.append((state["Default"], "default"))
        for catch in state.get("Catch") or ():
            if isinstance(catch, Mapping) and isinstance(catch.get("Next"), str):
                errors = [str(e) for e in catch.get("ErrorEquals") or ()]
                targets.append((catch["Next"], "catch " + _join(errors, 1)))
        if state.get("End") is True or kind in ("Succeed", "Fail"):
            targets.append((END, ""))
            ends = True
        seen: dict[str, list[str]] = {}
        for target, label in targets:
            seen.setdefault(target, [])
            if label and label not in seen[target]:
                seen[target].append(label)
        for target, labels in seen.items():
            edges.append(Edge(name, target, _join(labels, 1),
                              ("taken",) if (name, target) in taken else ()))
    if ends:
        nodes.append(Node(END, "end", ("final", "visited") if END in visited else ("final",)))
    return Diagram(title, nodes, edges, start=START)
