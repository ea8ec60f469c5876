"""Extension intrinsic_format: States.Format takes escaped braces and lone braces (moto
5.2.5 hands the template to str.format: States.Runtime)."""

from __future__ import annotations

import json

import pytest

from core_saga.emulator.pytest_plugin import AwsScope


@pytest.mark.parametrize(("template", "expected"), [
    ("States.Format('\\{\"id\": \"{}\"\\}', $.id)", '{"id": "o-1"}'),
    ("States.Format('a { b } {}', $.id)", "a { b } o-1"),
    ("States.Format('a \\\\ {} {}', $.id, $.n)", "a \\ o-1 2"),
    ("States.Format($.template, $.id)", "{x} o-1"),
], ids=["escaped-braces", "lone-braces", "escaped-backslash", "template-from-path"])
def test_format(aws: AwsScope, template: str, expected: str) -> None:
    machine = aws.create_state_machine("f", {"StartAt": "P", "States": {"P": {
        "Type": "Pass", "Parameters": {"t.$": template}, "End": True}}})
    described = aws.run(machine, {"id": "o-1", "n": 2, "template": "{x} {}"})
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["t"] == expected
