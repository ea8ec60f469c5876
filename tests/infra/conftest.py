"""Fixtures for the CDK app's checks: the app synthesized once per session (with the
cdk-nag checks), its template, and helpers to read it."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
if str(INFRA) not in sys.path:  # the app's package lives in infra/, beside app.py
    sys.path.insert(0, str(INFRA))

# jsii prints a banner on every start when node is past its end of life; the node here
# is what Debian ships. The CLI's own warnings are silenced the same way.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,19,20,21")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")


@dataclass(frozen=True)
class Synthesized:
    """One synthesized app."""

    stack: Any
    """The ``StepsagaStack``."""
    template: dict[str, Any]
    """The CloudFormation template (JSON)."""
    outdir: Path
    """The cloud assembly directory (templates, cdk-nag report)."""

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """Logical id → resource."""
        resources: dict[str, dict[str, Any]] = self.template["Resources"]
        return resources

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """The resources of one CloudFormation type, by logical id."""
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    def template_path(self) -> Path:
        """The template file in the cloud assembly."""
        return self.outdir / str(self.stack.template_file)


def synthesize(outdir: Path, context: dict[str, Any] | None = None, *,
               nag: bool = True) -> Synthesized:
    """Synthesize the app with `context` into `outdir`."""
    from stepsaga_infra import build_app

    app, stack = build_app(context, nag=nag, outdir=str(outdir))
    app.synth()
    template = json.loads((outdir / stack.template_file).read_text())
    return Synthesized(stack, template, outdir)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    """The app as `cdk synth` builds it from cdk.json's context (stage ``dev``, its
    settings from infra/stages/dev.json), with both cdk-nag packs."""
    context = json.loads((INFRA / "cdk.json").read_text())["context"]
    yield synthesize(tmp_path_factory.mktemp("cdk.out"), context)
