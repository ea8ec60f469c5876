"""``python -m supervisor_workflows (definition|mermaid) NAME [Key=Value ...]``: print a
workflow's ASL (placeholders replaced by the given substitutions, when any) or its
Mermaid graph."""

from __future__ import annotations

import argparse
import json
import sys

from . import WORKFLOWS, render_definition, to_mermaid


def main(argv: list[str] | None = None) -> int:
    """Print what the command line asks for; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m supervisor_workflows",
                                     description=__doc__)
    parser.add_argument("what", choices=["definition", "mermaid"])
    parser.add_argument("name", choices=sorted(WORKFLOWS))
    parser.add_argument("substitutions", nargs="*", metavar="Key=Value")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    definition = WORKFLOWS[args.name]()
    if args.what == "mermaid":
        print(to_mermaid(definition), end="")
    elif args.substitutions:
        pairs = dict(item.split("=", 1) for item in args.substitutions)
        print(render_definition(definition, pairs))
    else:
        print(json.dumps(definition, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
