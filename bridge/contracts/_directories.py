"""Compare two directories of contract schemas (a released set and a new one)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ._compat import BreakingChange, find_breaking_changes

SCHEMA_GLOB = "*.schema.json"


class SchemaDirectoryError(ValueError):
    """A directory or schema file that cannot be read; the message names it."""


@dataclass(frozen=True, slots=True)
class ContractBreak:
    """A breaking change in one schema file (``file`` is its name in both directories)."""

    file: str
    change: BreakingChange

    def __str__(self) -> str:
        return f"{self.file}: {self.change}"


def _schemas(directory: Path) -> dict[str, dict[str, object]]:
    if not directory.is_dir():
        raise SchemaDirectoryError(f"{directory} is not a directory of *.schema.json files")
    found: dict[str, dict[str, object]] = {}
    for path in sorted(directory.glob(SCHEMA_GLOB)):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SchemaDirectoryError(f"{path}: not a readable JSON schema: {exc}") from None
        if not isinstance(document, dict):
            raise SchemaDirectoryError(f"{path}: a schema must be a JSON object")
        found[path.name] = document
    if not found:
        raise SchemaDirectoryError(f"{directory} holds no {SCHEMA_GLOB} file")
    return found


def compare_schema_directories(old: str | Path, new: str | Path, *,
                               enum_additions_break: bool = True) -> list[ContractBreak]:
    """Every breaking change from the schemas in `old` to those in `new`, matched by
    file name (``<Name>.v<N>.schema.json``): a file of `old` missing from `new` is a
    removed contract; a file only in `new` is a new contract (compatible). Each pair is
    judged both ways by :func:`find_breaking_changes`."""
    before, after = _schemas(Path(old)), _schemas(Path(new))
    breaks: list[ContractBreak] = []
    for name, schema in before.items():
        if name not in after:
            breaks.append(ContractBreak(name, BreakingChange(
                "$", "contract-removed", "the new set has no such contract; its consumers "
                "need it (keep it, or release a new version beside it)")))
            continue
        breaks.extend(ContractBreak(name, change) for change in find_breaking_changes(
            schema, after[name], enum_additions_break=enum_additions_break))
    return breaks
