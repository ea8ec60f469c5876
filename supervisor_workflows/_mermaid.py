"""Draw an ASL definition as a Mermaid flowchart."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_SHAPES = {
    "Task": ('["', '"]'),
    "Pass": ('["', '"]'),
    "Wait": ('["', '"]'),
    "Choice": ('{"', '"}'),
    "Succeed": ('(["', '"])'),
    "Fail": ('(["', '"])'),
    "Parallel": ('[["', '"]]'),
    "Map": ('[["', '"]]'),
}
_COMPARATORS = ("StringEquals", "StringMatches", "NumericEquals", "NumericLessThan",
                "NumericGreaterThan", "BooleanEquals", "IsPresent", "IsString", "IsNull",
                "IsNumeric", "IsBoolean", "TimestampEquals")


def _node_id(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _text(value: str) -> str:
    return value.replace('"', "#quot;")


def _condition(rule: Mapping[str, Any]) -> str:
    for key in ("And", "Or"):
        if key in rule:
            return f" {key.lower()} ".join(_condition(r) for r in rule[key])
    if "Not" in rule:
        return f"not {_condition(rule['Not'])}"
    variable = str(rule.get("Variable", "?"))
    for comparator in _COMPARATORS:
        if comparator in rule:
            return f"{variable} {comparator} {json.dumps(rule[comparator])}"
        if f"{comparator}Path" in rule:
            return f"{variable} {comparator} {rule[comparator + 'Path']}"
    return variable


def _label(name: str, state: Mapping[str, Any]) -> str:
    kind = str(state.get("Type", "?"))
    lines = [name]
    resource = state.get("Resource")
    if isinstance(resource, str):
        lines.append(resource.rsplit(":::", 1)[-1])
    if "TimeoutSeconds" in state:
        lines.append(f"timeout {state['TimeoutSeconds']} s")
    for retry in state.get("Retry") or []:
        if any(not e.startswith(("SQS.", "DynamoDB.")) for e in retry["ErrorEquals"]):
            lines.append(f"retry ×{retry.get('MaxAttempts', 3)}")
    if kind in ("Succeed", "Fail") and len(lines) == 1:
        lines.append(kind if kind == "Succeed" else str(state.get("Error", "Fail")))
    return "<br/>".join(_text(line) for line in lines)


def to_mermaid(definition: Mapping[str, Any]) -> str:
    """A Mermaid ``flowchart TD`` of `definition`: a node per state (rectangles for Task
    and Pass, diamonds for Choice, stadiums for Succeed and Fail), solid arrows for
    ``Next``/``Default``/choices (labelled with the condition), dotted arrows for
    ``Catch`` (labelled with the errors). Retries and timeouts are shown in the nodes."""
    states: Mapping[str, Any] = definition["States"]
    lines = ["flowchart TD", "    start((start))", "    stop((end))"]
    for name, state in states.items():
        left, right = _SHAPES.get(str(state.get("Type")), ('["', '"]'))
        lines.append(f"    {_node_id(name)}{left}{_label(name, state)}{right}")
    lines.append(f"    start --> {_node_id(definition['StartAt'])}")
    for name, state in states.items():
        source = _node_id(name)
        for rule in state.get("Choices") or []:
            lines.append(f'    {source} -->|"{_text(_condition(rule))}"| '
                         f"{_node_id(rule['Next'])}")
        if "Default" in state:
            lines.append(f'    {source} -->|"default"| {_node_id(state["Default"])}')
        if "Next" in state:
            lines.append(f"    {source} --> {_node_id(state['Next'])}")
        for catch in state.get("Catch") or []:
            errors = ", ".join(catch["ErrorEquals"])
            lines.append(f'    {source} -.->|"{_text(errors)}"| {_node_id(catch["Next"])}')
        if state.get("End") or state.get("Type") in ("Succeed", "Fail"):
            lines.append(f"    {source} --> stop")
    return "\n".join(lines) + "\n"
