"""docs/deploy.md stays true to the app: the outputs it names are the template's (and
every output is explained), the settings table lists exactly the keys a stage file
takes with their defaults, the example stage file is valid, the committed stages are
the ones it describes, and the make targets it names exist. (Its shell commands run on
the emulator in test_local_deploy.)"""

from __future__ import annotations

import json
import re

from stepsaga_infra.settings import STAGES_DIR, InfraSettings

from .conftest import ROOT, Synthesized

DOC = (ROOT / "docs" / "deploy.md").read_text()


def section(heading: str) -> str:
    start = DOC.index(heading)
    end = DOC.find("\n## ", start + 1)
    return DOC[start:end if end != -1 else None]


def test_every_output_is_explained_and_every_named_output_exists(
        synthesized: Synthesized, tmp_path: object) -> None:
    from .conftest import synthesize

    prod = synthesize(tmp_path, {"stepsaga:stage": "prod"}, nag=False)  # type: ignore[arg-type]
    outputs = set(synthesized.template["Outputs"]) | set(prod.template["Outputs"])
    rows = "\n".join(line.split("|")[1] for line in section(
        "## 6. Wire the workers to the outputs").splitlines() if line.startswith("| `"))
    named = set(re.findall(r"`([A-Z][A-Za-z]+)`", rows))
    wildcard = {o for o in outputs if o.endswith("DlqUrl")}  # the `*DlqUrl` row
    assert outputs - wildcard <= named, sorted(outputs - wildcard - named)
    outputish = {n for n in named if n.endswith(("Url", "Arn", "Name", "Prefix"))}
    assert outputish <= outputs, sorted(outputish - outputs)


def test_the_settings_table_lists_exactly_the_keys_a_stage_file_takes() -> None:
    listed = set(re.findall(r"^\| `([a-zA-Z]+)` \|", section("## 4. Settings"), re.M))
    assert listed == set(InfraSettings.file_keys())


def test_the_defaults_in_the_table_are_the_settings_defaults() -> None:
    defaults = InfraSettings().to_mapping()
    rows = re.findall(r"^\| `([a-zA-Z]+)` \| ([^|]+) \|", section("## 4. Settings"), re.M)
    assert rows
    for key, default in rows:
        expected = defaults[key]
        shown = default.strip().strip("`")
        assert shown == (str(expected).lower() if isinstance(expected, bool)
                         else "{}" if expected == {} else str(expected)), (key, shown)


def test_the_example_stage_file_is_valid() -> None:
    [block] = re.findall(r"```json\n(.*?)```", section("## 4. Settings"), re.S)
    settings = InfraSettings.from_mapping(json.loads(block))
    assert settings.stage == "qa" and settings.creates_key


def test_the_committed_stages_are_the_ones_described() -> None:
    described = set(re.findall(r"^\| `([a-z-]+)\.json` \|", section("## 4. Settings"), re.M))
    assert described == {p.name.removesuffix(".json") for p in STAGES_DIR.glob("*.json")}


def test_the_make_targets_named_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"(?:`|^)make ([a-z][a-z-]+)", DOC, re.M)):
        assert re.search(rf"^{target}:", makefile, re.M), target
    assert "--import-existing-resources" in makefile  # what §5 and §8 promise
    assert re.search(r"^destroy:.*\n.*CONFIRM", makefile, re.M)
