"""Render a compiled saga model as Mermaid or Graphviz DOT."""

from __future__ import annotations

import re

from ._model import SagaModel
from ._states import FINAL, INITIAL


def _node_id(state: str) -> str:
    return re.sub(r"\W", "_", state)


def _shown_states(model: SagaModel) -> list[str]:
    """Initial, and every state an edge touches: a request's pending state that no
    behavior enters (or leaves) is not drawn as an island."""
    used = {t.source for t in model.transitions} | {t.target for t in model.transitions}
    return [s for s in model.states if s == INITIAL.name or s in used]


def to_mermaid(model: SagaModel, *, highlight: str | None = None) -> str:
    """A Mermaid ``stateDiagram-v2``; `highlight` marks the current state."""
    lines = ["stateDiagram-v2"]
    shown = _shown_states(model)
    for state in shown:
        if _node_id(state) != state:
            lines.append(f'    state "{state}" as {_node_id(state)}')
    lines.append(f"    [*] --> {_node_id(INITIAL.name)}")
    for t in model.transitions:
        lines.append(f"    {_node_id(t.source)} --> {_node_id(t.target)}: {t.label}")
    for state in sorted(model.terminal_states):
        if state in shown:
            lines.append(f"    {_node_id(state)} --> [*]")
    if highlight is not None and highlight in model.states:
        lines.append("    classDef current fill:#ffb347,stroke:#c60,stroke-width:2px")
        lines.append(f"    class {_node_id(highlight)} current")
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(model: SagaModel, *, highlight: str | None = None) -> str:
    """A Graphviz ``digraph``; `highlight` fills the current state. Initial is entered
    from a start dot; end states (Final, ``State(terminal=True)``) have a double border.
    Edges read ``Event [guard]``: the filter and ``if_`` branches that lead there."""
    lines = [f'digraph "{_escape(model.name)}" {{', "    rankdir=LR;",
             "    node [shape=box, style=rounded];",
             '    "__start" [shape=point, width=0.15, label=""];',
             f'    "__start" -> "{INITIAL.name}";']
    for state in _shown_states(model):
        attrs = []
        if state == INITIAL.name:
            attrs.append('style="rounded,bold"')
        elif state == FINAL.name or state in model.terminal_states:
            attrs.append("peripheries=2")
        if state == highlight:
            attrs = [a for a in attrs if not a.startswith("style=")]
            bold = ",bold" if state == INITIAL.name else ""
            attrs.append(f'style="rounded,filled{bold}"')
            attrs.append('fillcolor="#ffb347"')
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f'    "{state}"{suffix};')
    for t in model.transitions:
        lines.append(f'    "{t.source}" -> "{t.target}" [label="{_escape(t.label)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
