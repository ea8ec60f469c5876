"""The mutation check (``python -m tests.reliability.mutations``) is too slow for CI;
what CI does check is that each of its bugs still applies to the code as it is (the
code it changes has not moved), and that its command line answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .mutations import MUTATIONS, REPO, Mutation, apply, copy_tree


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("tree")
    copy_tree(where)
    return where


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_each_injected_bug_still_applies_to_the_code(mutation: Mutation, tree: Path) -> None:
    apply(mutation, tree)  # raises LookupError when the code to change is not there once
    for path, _, new in mutation.edits:
        assert new in (tree / path).read_text()
        assert (REPO / path).read_text() != (tree / path).read_text()


def test_the_mutation_check_lists_its_mutations() -> None:
    done = subprocess.run([sys.executable, "-m", "tests.reliability.mutations", "--help"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    for mutation in MUTATIONS:
        assert mutation.name in done.stdout
