"""The target-input rules the EventBridge extensions share (no server needed)."""

from __future__ import annotations

import json
from typing import Any

from core_saga.emulator._extensions._event_input import render_template, target_input

MOTO_EVENT: dict[str, Any] = {
    "version": "0", "id": "e-1", "detail-type": "SupervisionRequested", "source": "s",
    "account": "123456789012", "time": 1767225600.5, "region": "us-east-1", "resources": [],
    "detail": {"h": "h-1", "n": 2, "o": {"k": "v"}, "q": 'say "hi"'},
    "ingestion-time": 1767225600.7}


def _input(**target: Any) -> str:
    return target_input(target, MOTO_EVENT, rule_name="r", rule_arn="arn:r")


def test_whole_event_as_aws_writes_it() -> None:
    event = json.loads(_input())
    assert event["time"] == "2026-01-01T00:00:00Z" and "ingestion-time" not in event
    assert list(event) == ["version", "id", "detail-type", "source", "account", "time",
                           "region", "resources", "detail"]


def test_input_and_input_path() -> None:
    assert _input(Input='{"a": 1}') == '{"a": 1}'
    assert json.loads(_input(InputPath="$.detail.o")) == {"k": "v"}
    assert json.loads(_input(InputPath="$")) == json.loads(_input())
    assert _input(InputPath="$.detail.absent") == "null"


def test_json_template_quotes_strings_outside_quotes_only() -> None:
    values = {"h": "h-1", "n": 2, "o": {"k": "v"}, "q": 'say "hi"'}
    rendered = render_template(
        '{"h": <h>, "n": <n>, "o": <o>, "text": "<h> has <n> and <q>", "l": [<h>]}', values)
    assert json.loads(rendered) == {"h": "h-1", "n": 2, "o": {"k": "v"},
                                    "text": 'h-1 has 2 and say "hi"', "l": ["h-1"]}


def test_text_template_and_unknown_placeholders() -> None:
    assert render_template("<h> is <state>", {"h": "h-1"}) == "h-1 is <state>"


def test_transformer_missing_paths_and_predefined_names() -> None:
    rendered = json.loads(_input(InputTransformer={
        "InputPathsMap": {"x": "$.detail.absent", "q": "$.detail.q"},
        "InputTemplate": '{"x": <x>, "q": "<q>", "rule": "<aws.events.rule-name>", '
                         '"arn": <aws.events.rule-arn>, "at": <aws.events.event.ingestion-time>, '
                         '"event": <aws.events.event>, "all": <aws.events.event.json>}'}))
    assert rendered["x"] is None and rendered["q"] == 'say "hi"'
    assert rendered["rule"] == "r" and rendered["arn"] == "arn:r"
    assert rendered["at"] == "2026-01-01T00:00:00Z"
    assert "detail" not in rendered["event"] and rendered["all"]["detail"]["h"] == "h-1"
