"""``python -m bridge.contracts [DIRECTORY]``: write the contracts' JSON Schemas
(default ``docs/contracts``)."""

from __future__ import annotations

import sys

from ._schema import export_schemas


def main(argv: list[str] | None = None) -> int:
    """Export the schemas into the directory named in `argv` (or docs/contracts)."""
    args = sys.argv[1:] if argv is None else argv
    for path in export_schemas(args[0] if args else "docs/contracts"):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
