"""Extension sfn_string_output: an execution that ends with a JSON string describes its
output as JSON (moto 5.2.5 returns the bare string)."""

from __future__ import annotations

import json

import pytest

from core_saga.emulator.pytest_plugin import AwsScope


@pytest.mark.parametrize("result", ["late", {"a": "b"}, 3, None, ["x"]])
def test_output_is_json_text(aws: AwsScope, result: object) -> None:
    machine = aws.create_state_machine("out", {"StartAt": "P", "States": {"P": {
        "Type": "Pass", "Result": result, "End": True}}})
    described = aws.run(machine, {})
    assert json.loads(described["output"]) == result
