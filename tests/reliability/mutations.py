"""The mutation check: does the reliability run notice the bugs it exists to catch?

Each mutation below puts one known bug into a temporary copy of the tree (the working
tree as it is, uncommitted changes included), runs a short targeted reliability run in
that copy, and expects at least one violation. A mutation the run does not notice
"survives", and the check fails. An unmutated run of each target comes first: it must
find nothing, or the targets themselves are wrong.

    .venv/bin/python -m tests.reliability.mutations            # all, on PostgreSQL
    .venv/bin/python -m tests.reliability.mutations --only oversell

It prints a table (mutation, violations found, the first one) and exits 1 if a mutation
survived, a baseline was not clean, or a mutation no longer applies (the code it
changes has moved: update it here).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mutation:
    """One injected bug: `old` replaced by `new` in `path`, each exactly once."""

    name: str
    what: str
    edits: tuple[tuple[str, str, str], ...]
    """(path, old, new)."""
    paths: str
    """The order paths of its targeted run (``--paths``)."""
    options: tuple[str, ...] = ()
    """More options of its targeted run."""


MUTATIONS = (
    Mutation(
        "refund-key", "the refund's idempotency key differs on each attempt",
        (("examples/order_to_cash/payment/consumers.py",
          'idempotency_key=f"{command.order_id}:refund")',
          'idempotency_key=f"{command.order_id}:refund:"'
          ' + __import__("uuid").uuid4().hex)'),),
        "carrier-long,silent-long,scarce"),
    Mutation(
        "inbox-off", "the inbox dedupe turned off (a message seen before is applied again)",
        (("core_saga/persistence/_asyncpg.py",
          "        if not r[0]:\n            return False, None\n",
          "        if False:\n            return False, None\n"),
         ("core_saga/persistence/_asyncpg.py", "        return bool(_count(status))",
          "        return True")),
        "happy,carrier-long,silent-long", ("--duplicate", "0.3")),
    Mutation(
        "oversell", "stock taken without its condition and without the CHECK constraint",
        (("examples/order_to_cash/inventory/tables.py",
          '    CheckConstraint("available >= 0", name="stock_never_negative"),\n', ""),
         ("examples/order_to_cash/inventory/repository.py",
          '                      stock.c.available >= bindparam("w_quantity"))',
          '                      stock.c.available > -1_000_000_000)')),
        "scarce"),
    Mutation(
        "version-check-off", "the optimistic version check removed from instance updates",
        (("core_saga/persistence/_asyncpg.py",
          'f"AND correlation_id = ${n + 5} AND version = ${n + 6} RETURNING 1)")',
          'f"AND correlation_id = ${n + 5} AND ${n + 6}::integer IS NOT NULL RETURNING 1)")'),
         ("core_saga/persistence/_asyncpg.py",
          '"WHERE saga_type = $1 AND correlation_id = $2 AND version = $7")',
          '"WHERE saga_type = $1 AND correlation_id = $2 AND $7::integer IS NOT NULL")')),
        "concurrent", ("--workers", "4")),
)


def copy_tree(into: Path) -> None:
    """The working tree's files (tracked and new, not ignored) into `into`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def apply(mutation: Mutation, tree: Path) -> None:
    for path, old, new in mutation.edits:
        file = tree / path
        text = file.read_text()
        if text.count(old) != 1:
            raise LookupError(f"{mutation.name}: {path} has {text.count(old)} copies of the "
                              f"code to change (wanted 1): {old!r}")
        file.write_text(text.replace(old, new))


def targeted_run(tree: Path, paths: str, args: argparse.Namespace, log: Path,
                 options: tuple[str, ...] = ()) -> tuple[int, str]:
    """Run the suite in `tree` (its own code first on the path); (violations, first)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "tests.reliability", "--database", args.database,
               "--orders", str(args.orders), "--seed", str(args.seed), "--paths", paths,
               "--db-outage", "0", "--aws-outage", "0", "--freeze", "0",
               "--clock-skew", "0", "--bound", str(args.bound),
               "--workdir", str(tree / ".stepsaga" / "reliability"), *options]
    with log.open("w") as out:
        subprocess.run(command, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT,
                       timeout=args.bound + 600, check=False)
    text = log.read_text(errors="replace")
    found = re.findall(r"^violations: (\d+)$", text, re.MULTILINE)
    if not found:
        return -1, "the run did not finish (see its log)"
    lines = text.splitlines()
    at = lines.index(f"violations: {found[-1]}")
    first = lines[at + 1].strip() if int(found[-1]) and at + 1 < len(lines) else ""
    return int(found[-1]), first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.mutations",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=[m.name for m in MUTATIONS])
    parser.add_argument("--orders", type=int, default=30)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--bound", type=float, default=90)
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the unmutated runs")
    parser.add_argument("--keep", action="store_true", help="keep the copies and logs")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    rows: list[tuple[str, str, str, str]] = []
    failed = False
    work = Path(tempfile.mkdtemp(prefix="stepsaga-mutations-"))
    try:
        jobs: list[tuple[str, Mutation | None, str, tuple[str, ...]]] = []
        if not args.no_baseline:
            targets = ",".join(sorted({p for m in chosen for p in m.paths.split(",")}))
            jobs.append(("(none)", None, targets, ("--duplicate", "0.3")))
        jobs += [(m.name, m, m.paths, m.options) for m in chosen]
        for name, mutation, paths, options in jobs:
            tree = work / name.strip("()")
            copy_tree(tree)
            begun = time.monotonic()
            try:
                if mutation is not None:
                    apply(mutation, tree)
            except LookupError as exc:
                rows.append((name, "-", "does not apply", str(exc)))
                failed = True
                continue
            count, first = targeted_run(tree, paths, args, work / f"{name.strip('()')}.log",
                                        options)
            seconds = time.monotonic() - begun
            if mutation is None:
                verdict = "clean" if count == 0 else "NOT CLEAN"
                failed = failed or count != 0
            else:
                verdict = "caught" if count > 0 else "SURVIVED"
                failed = failed or count <= 0
            rows.append((name, str(count), f"{verdict} ({seconds:.0f} s)", first[:110]))
            print(f"{name}: {count} violation(s), {verdict}", flush=True)
    finally:
        if args.keep:
            print(f"copies and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nmutation check: {args.orders} orders a run on {args.database}, seed {args.seed}")
    print(f"{'mutation':<18} {'violations':>10}  {'verdict':<18} first violation")
    for row in rows:
        print(f"{row[0]:<18} {row[1]:>10}  {row[2]:<18} {row[3]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
