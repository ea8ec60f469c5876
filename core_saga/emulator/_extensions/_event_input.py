"""What an EventBridge rule target receives, computed the way AWS computes it.

Shared by the EventBridge extensions. moto builds events as
``{"version", "id", "detail-type", "source", "account", "time": <epoch float>, "region",
"resources", "detail", "ingestion-time": <epoch float>}``; AWS delivers ``time`` as
``YYYY-MM-DDTHH:MM:SSZ`` and never shows ``ingestion-time``.

A target takes at most one of (AWS rejects more than one at PutTargets):

- ``Input``: a constant JSON text, delivered verbatim;
- ``InputPath``: a JSONPath into the event (``$.detail``), the selected value as JSON;
- ``InputTransformer``: ``InputPathsMap`` (name -> JSONPath) and ``InputTemplate``.
  Placeholders ``<name>`` outside a JSON string take the value as JSON (a string
  gets its quotes, a missing path gives ``null``); inside a JSON string, or in a
  template that is not JSON at all, they take the value's text. The predefined
  names ``aws.events.rule-arn``, ``aws.events.rule-name``,
  ``aws.events.event.ingestion-time``, ``aws.events.event`` (the event without
  ``detail``) and ``aws.events.event.json`` (the whole event) are known too.
- none of them: the whole event.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_MISSING = object()


def aws_time(value: Any) -> str:
    """An event time as AWS writes it (``2026-01-31T12:00:00Z``); moto keeps epoch
    seconds, or whatever the PutEvents caller sent."""
    if isinstance(value, int | float):
        moment = datetime.datetime.fromtimestamp(float(value), tz=datetime.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def aws_event(moto_event: dict[str, Any]) -> dict[str, Any]:
    """The event as AWS delivers it to a target, from moto's internal form."""
    event = {key: value for key, value in moto_event.items() if key != "ingestion-time"}
    event["time"] = aws_time(event.get("time"))
    return {key: event[key] for key in ("version", "id", "detail-type", "source", "account",
                                         "time", "region", "resources", "detail")
            if key in event}


def json_path(path: str, document: Any) -> Any:
    """The first value `path` selects in `document`, or ``_MISSING``."""
    from jsonpath_ng.ext.parser import parse

    if path.strip() == "$":
        return document
    matches = parse(path).find(document)
    return matches[0].value if matches else _MISSING


def target_input(target: dict[str, Any], moto_event: dict[str, Any], *, rule_name: str,
                 rule_arn: str) -> str:
    """The text the target receives for this event."""
    event = aws_event(moto_event)
    if target.get("Input") is not None:
        return str(target["Input"])
    if target.get("InputPath"):
        selected = json_path(str(target["InputPath"]), event)
        return json.dumps(None if selected is _MISSING else selected)
    transformer = target.get("InputTransformer")
    if transformer:
        values: dict[str, Any] = {
            name: json_path(str(path), event)
            for name, path in (transformer.get("InputPathsMap") or {}).items()}
        ingestion = moto_event.get("ingestion-time", moto_event.get("time"))
        values.update({
            "aws.events.rule-arn": rule_arn,
            "aws.events.rule-name": rule_name,
            "aws.events.event.ingestion-time": aws_time(ingestion),
            "aws.events.event": {k: v for k, v in event.items() if k != "detail"},
            "aws.events.event.json": event,
        })
        return render_template(str(transformer.get("InputTemplate", "")), values)
    return json.dumps(event)


def render_template(template: str, values: dict[str, Any]) -> str:
    """Fill an InputTemplate's placeholders (see the module docstring)."""
    as_json = template.lstrip()[:1] in ("{", "[", '"')
    out: list[str] = []
    in_string = escaped = False
    position = 0
    while position < len(template):
        char = template[position]
        match = _PLACEHOLDER.match(template, position) if char == "<" else None
        if match and match.group(1) in values:
            value = values[match.group(1)]
            if as_json and not in_string:
                out.append(json.dumps(None if value is _MISSING else value))
            else:
                text = ("" if value is _MISSING else value if isinstance(value, str)
                        else json.dumps(value))
                out.append(json.dumps(text)[1:-1] if as_json else text)
            position = match.end()
            continue
        if as_json:
            if escaped:
                escaped = False
            elif char == "\\" and in_string:
                escaped = True
            elif char == '"':
                in_string = not in_string
        out.append(char)
        position += 1
    return "".join(out)
