"""Linters on the synthesized app: cfn-lint on the template, cdk-nag's
``AwsSolutionsChecks`` on the constructs, and an ASL linter (``statelint``) on each
embedded state machine definition."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match
from statelint.config import Config
from statelint.linter import Linter

from supervisor_workflows import SUBSTITUTIONS, render_definition

from .conftest import INFRA, Synthesized

CFN_LINT_CONFIG = INFRA / ".cfnlintrc.yaml"

EXPECTED_SUPPRESSIONS = {
    ("AwsSolutions-IAM5", "stepsaga-dev/Workflows/ManualReviewRole/DefaultPolicy/Resource"),
    ("AwsSolutions-IAM5", "stepsaga-dev/Workflows/SlowShippingRole/DefaultPolicy/Resource"),
    ("AwsSolutions-SQS3", "stepsaga-dev/Supervision/RuleDlq/Resource"),
}
"""Every acknowledged cdk-nag finding: a new one must be added here on purpose."""


def run_cfn_lint(*args: str) -> subprocess.CompletedProcess[str]:
    """cfn-lint's command line, from this interpreter's environment."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; from cfnlint.runner import main; sys.exit(main())",
         *args], capture_output=True, text=True, timeout=120, check=False)


def test_cfn_lint_is_clean(synthesized: Synthesized) -> None:
    result = run_cfn_lint("--config-file", str(CFN_LINT_CONFIG), "--format", "parseable",
                          "--", str(synthesized.template_path()))
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_ignores_are_justified() -> None:
    """Each ignored check in .cfnlintrc.yaml has a comment right above it, naming it."""
    lines = CFN_LINT_CONFIG.read_text().splitlines()
    ignored = [(i, m.group(1)) for i, line in enumerate(lines)
               if (m := re.match(r"^\s+-\s+([EWI]\d{4})\s*$", line))]
    assert ignored, "no ignores: remove this test's expectations or the file"
    for index, check in ignored:
        comment = []
        for line in reversed(lines[:index]):
            if not line.strip().startswith("#"):
                break
            comment.append(line)
        text = " ".join(comment)
        assert check in text and len(text) > 80, f"{check} is ignored without a reason"


def test_cfn_lint_finds_problems(tmp_path: Path) -> None:
    """The linter is live: a broken template fails."""
    broken = {"Resources": {"Q": {"Type": "AWS::SQS::Queue",
                                  "Properties": {"VisibilityTimeout": "forever"}}}}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    assert run_cfn_lint("--", str(path)).returncode != 0


def test_cdk_nag_has_no_unsuppressed_findings(synthesized: Synthesized) -> None:
    annotations = Annotations.from_stack(synthesized.stack)
    nag = Match.string_like_regexp(r"AwsSolutions-")
    errors = annotations.find_error("*", nag)
    warnings = annotations.find_warning("*", nag)
    assert not errors, [e.entry.data for e in errors]
    assert not warnings, [w.entry.data for w in warnings]


def nag_report(synthesized: Synthesized) -> list[dict[str, str]]:
    [path] = synthesized.outdir.glob("AwsSolutions-*-NagReport.csv")
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_cdk_nag_ran_and_every_suppression_has_a_reason(synthesized: Synthesized) -> None:
    rows = nag_report(synthesized)
    rules = {row["Rule ID"] for row in rows}
    # the pack really looked at what matters here
    assert {"AwsSolutions-SF1", "AwsSolutions-SF2", "AwsSolutions-SQS2", "AwsSolutions-SQS3",
            "AwsSolutions-SQS4", "AwsSolutions-IAM5", "AwsSolutions-DDB3"} <= rules
    assert {row["Compliance"] for row in rows} <= {"Compliant", "Suppressed"}
    suppressed = [row for row in rows if row["Compliance"] == "Suppressed"]
    assert {(r["Rule ID"], r["Resource ID"]) for r in suppressed} == EXPECTED_SUPPRESSIONS
    for row in suppressed:
        assert len(row["Exception Reason"]) > 60, row


def test_suppressions_in_the_template_carry_reasons(synthesized: Synthesized) -> None:
    found = 0
    for logical, resource in synthesized.resources.items():
        rules = resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
        for rule in rules:
            found += 1
            assert rule["id"].startswith("AwsSolutions-"), (logical, rule)
            assert len(rule.get("reason", "")) > 60, (logical, rule)
            if rule["id"] == "AwsSolutions-IAM5":  # only Resource::*, never an action
                assert rule["applies_to"] == ["Resource::*"], (logical, rule)
    assert found == len(EXPECTED_SUPPRESSIONS)


SAMPLE_VALUES = {
    "ClaimTableName": "stepsaga-dev-handoff-claims",
    "ReviewQueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/dev-review",
    "ShippingQueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/dev-shipping",
}


def embedded_definitions(synthesized: Synthesized) -> dict[str, str]:
    """Each state machine's DefinitionString from the template, with its
    DefinitionSubstitutions replaced by values of the right shape."""
    out = {}
    for machine in synthesized.of_type("AWS::StepFunctions::StateMachine").values():
        properties: dict[str, Any] = machine["Properties"]
        assert set(properties["DefinitionSubstitutions"]) <= set(SUBSTITUTIONS)
        out[properties["StateMachineName"]] = render_definition(
            json.loads(properties["DefinitionString"]),
            {k: SAMPLE_VALUES[k] for k in properties["DefinitionSubstitutions"]})
    return out


def test_embedded_definitions_pass_statelint(synthesized: Synthesized) -> None:
    definitions = embedded_definitions(synthesized)
    assert set(definitions) == {"stepsaga-dev-ManualReview", "stepsaga-dev-SlowShipping"}
    for name, text in definitions.items():
        assert "${" not in text, name
        assert Linter.validate(text, Config()) == [], name


@pytest.mark.parametrize("breakage", ["missing next", "unknown field"])
def test_statelint_finds_problems(synthesized: Synthesized, breakage: str) -> None:
    """The linter is live: a broken definition fails."""
    text = embedded_definitions(synthesized)["stepsaga-dev-ManualReview"]
    definition = json.loads(text)
    state = definition["States"]["CheckDecision"]
    if breakage == "missing next":
        state["Default"] = "NoSuchState"
    else:
        state["Retry"] = []  # Choice states cannot retry
    assert Linter.validate(json.dumps(definition), Config())
