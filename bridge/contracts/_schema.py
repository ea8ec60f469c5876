"""JSON Schema export of the contracts: ``docs/contracts/<Name>.v<N>.schema.json``.

Re-export after changing a contract::

    python -m bridge.contracts docs/contracts
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core_saga import Message

from ._events import CONTRACTS

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_file_name(contract: type[Message]) -> str:
    """``<Name>.v<version>.schema.json``."""
    return f"{contract.__name__}.v{contract.message_version}.schema.json"


def contract_schema(contract: type[Message]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12, camelCase names) a consumer validates against."""
    schema = contract.model_json_schema(by_alias=True, mode="validation")
    head: dict[str, Any] = {"$schema": JSON_SCHEMA_DIALECT, "$id": contract.message_urn}
    detail_type = getattr(contract, "detail_type", "")
    if detail_type:
        head["x-detail-type"] = detail_type
    return {**head, **schema}


def render_schema(contract: type[Message]) -> str:
    """The schema file's exact text (sorted keys, two-space indent, final newline)."""
    return json.dumps(contract_schema(contract), indent=2, sort_keys=True,
                      ensure_ascii=False) + "\n"


def export_schemas(directory: str | Path,
                   contracts: tuple[type[Message], ...] = CONTRACTS) -> list[Path]:
    """Write every contract's schema into `directory` (created if missing); the paths."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for contract in contracts:
        path = target / schema_file_name(contract)
        path.write_text(render_schema(contract), encoding="utf-8")
        written.append(path)
    return written
