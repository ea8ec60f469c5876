"""docs/deploy.md stays true to the app: the outputs it names are the template's, every
output is explained, and every context key it lists is one the settings read."""

from __future__ import annotations

import re

from stepsaga_infra.settings import InfraSettings

from .conftest import ROOT, Synthesized

DOC = (ROOT / "docs" / "deploy.md").read_text()


def _table_after(heading: str) -> str:
    start = DOC.index(heading)
    end = DOC.find("\n## ", start + 1)
    return DOC[start:end if end != -1 else None]


def test_every_output_is_explained_and_every_named_output_exists(
        synthesized: Synthesized) -> None:
    outputs = set(synthesized.template["Outputs"])
    section = _table_after("## 5. Wire the workers to the outputs")
    rows = "\n".join(line.split("|")[1] for line in section.splitlines()
                     if line.startswith("| `"))
    named = set(re.findall(r"`([A-Z][A-Za-z]+)`", rows))
    wildcard = {o for o in outputs if o.endswith("DlqUrl")}  # `*DlqUrl` row
    assert outputs - wildcard <= named, sorted(outputs - wildcard - named)
    outputish = {n for n in named if n.endswith(("Url", "Arn", "Name", "Prefix"))}
    assert outputish <= outputs, sorted(outputish - outputs)


def test_the_context_table_lists_exactly_the_keys_the_settings_read() -> None:
    section = _table_after("## 4. Deploy")
    listed = set(re.findall(r"\| `(stepsaga:[A-Za-z]+)` \|", section))
    assert listed == set(InfraSettings.context_keys())


def test_the_defaults_in_the_table_are_the_settings_defaults() -> None:
    section = _table_after("## 4. Deploy")
    defaults = InfraSettings().to_context()
    for key, default in re.findall(r"\| `(stepsaga:[A-Za-z]+)` \| ([^|]+) \|", section):
        expected = defaults[key]
        shown = default.strip().strip("`")
        assert shown == (str(expected).lower() if isinstance(expected, bool)
                         else "{}" if expected == {} else str(expected)), (key, shown)
