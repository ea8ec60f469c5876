"""Linters on the synthesized app: cfn-lint on the template, cdk-nag's
``AwsSolutionsChecks`` and ``NIST80053R5Checks`` on the constructs (of every committed
stage), and an ASL linter (``statelint``) on each embedded state machine definition."""

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
from stepsaga_infra.settings import STAGES_DIR

from supervisor_workflows import SUBSTITUTIONS, render_definition

from .conftest import INFRA, Synthesized, synthesize

CFN_LINT_CONFIG = INFRA / ".cfnlintrc.yaml"

PACKS = ("AwsSolutions", "NIST.800.53.R5")
"""The cdk-nag packs the app runs (app_builder.build_app)."""
EXPECTED_SUPPRESSIONS = {
    ("AwsSolutions-IAM5", "stepsaga-dev/Workflows/ManualReviewPolicy/Resource"),
    ("AwsSolutions-IAM5", "stepsaga-dev/Workflows/SlowShippingPolicy/Resource"),
    ("AwsSolutions-IAM5", "stepsaga-dev/Access/ConsolePolicy/Resource"),
    ("AwsSolutions-IAM5", "stepsaga-dev/Access/WorkersPolicy/Resource"),
    ("NIST.800.53.R5-SNSEncryptedKMS", "stepsaga-dev/Monitoring/AlarmTopic/Resource"),
    ("AwsSolutions-SQS3", "stepsaga-dev/Supervision/RuleDlq/Resource"),
    ("NIST.800.53.R5-DynamoDBInBackupPlan", "stepsaga-dev/Claims/Table/Resource"),
    ("NIST.800.53.R5-CloudWatchLogGroupEncrypted",
     "stepsaga-dev/Workflows/ManualReviewLogs/Resource"),
    ("NIST.800.53.R5-CloudWatchLogGroupEncrypted",
     "stepsaga-dev/Workflows/SlowShippingLogs/Resource"),
}
"""Every acknowledged cdk-nag finding of the dev stage: a new one must be added here on
purpose (the log groups' and the alarm topic's go away with a customer-managed key, as
in prod)."""


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


def _nag_findings(stack: Any) -> list[Any]:
    annotations = Annotations.from_stack(stack)
    nag = Match.string_like_regexp(r"^(AwsSolutions|NIST\.800\.53\.R5)-")
    return [*annotations.find_error("*", nag), *annotations.find_warning("*", nag)]


def test_cdk_nag_has_no_unsuppressed_findings(synthesized: Synthesized) -> None:
    findings = _nag_findings(synthesized.stack)
    assert not findings, [f.entry.data for f in findings]


@pytest.mark.parametrize("stage", sorted(p.stem for p in STAGES_DIR.glob("*.json")))
def test_every_committed_stage_is_nag_clean(stage: str, tmp_path: Path) -> None:
    """prod and local create a KMS key and a worker role: both packs pass there too."""
    synth = synthesize(tmp_path, {"stepsaga:stage": stage})
    findings = _nag_findings(synth.stack)
    assert not findings, [f.entry.data for f in findings]
    assert {p.name.split("-")[0] for p in tmp_path.glob("*-NagReport.csv")} == {
        "AwsSolutions", "NIST.800.53.R5"}


def nag_report(synthesized: Synthesized) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for pack in PACKS:
        [path] = synthesized.outdir.glob(f"{pack}-*-NagReport.csv")
        with path.open(newline="") as handle:
            rows.extend(csv.DictReader(handle))
    return rows


def test_cdk_nag_ran_and_every_suppression_has_a_reason(synthesized: Synthesized) -> None:
    rows = nag_report(synthesized)
    rules = {row["Rule ID"] for row in rows}
    # the packs really looked at what matters here
    assert {"AwsSolutions-SF1", "AwsSolutions-SF2", "AwsSolutions-SQS2", "AwsSolutions-SQS3",
            "AwsSolutions-SQS4", "AwsSolutions-IAM5", "AwsSolutions-DDB3",
            "NIST.800.53.R5-IAMNoInlinePolicy", "NIST.800.53.R5-CloudWatchLogGroupEncrypted",
            "NIST.800.53.R5-DynamoDBPITREnabled",
            "NIST.800.53.R5-CloudWatchLogGroupRetentionPeriod",
            "NIST.800.53.R5-IAMPolicyNoStatementsWithFullAccess"} <= rules, sorted(rules)
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
            assert rule["id"].startswith(tuple(f"{p}-" for p in PACKS)), (logical, rule)
            assert len(rule.get("reason", "")) > 60, (logical, rule)
            if rule["id"] == "AwsSolutions-IAM5":  # only resources, never an action
                assert rule["applies_to"] in (["Resource::*"], [
                    "Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
                    f"execution:stepsaga-dev-{w}:*" for w in ("ManualReview", "SlowShipping")
                ]), (logical, rule)
    assert found == len(EXPECTED_SUPPRESSIONS)


def test_no_inline_iam_policy_anywhere(synthesized: Synthesized) -> None:
    assert not synthesized.of_type("AWS::IAM::Policy")
    for logical, role in synthesized.of_type("AWS::IAM::Role").items():
        assert "Policies" not in role["Properties"], logical


SAMPLE_VALUES = {
    "ClaimTableName": "stepsaga-dev-handoff-claims",
    "ReviewQueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/stepsaga-dev-review",
    "ShippingQueueUrl":
        "https://sqs.us-east-1.amazonaws.com/123456789012/stepsaga-dev-shipping",
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
