"""``python -m tests.reliability``: one fault-injection run; exit 1 on any violation."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .harness import DEFAULT_PG, RunOptions, run
from .plan import NO_FAULTS, FaultRates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability",
                                     description=__doc__)
    parser.add_argument("--orders", type=int, default=300, help="orders to run (300)")
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"),
                        default="both", help="where the state lives (both)")
    parser.add_argument("--seed", type=int, default=None, help="replay a run's seed")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--rate", type=float, default=8.0, help="orders per second (8)")
    parser.add_argument("--bound", type=float, default=None,
                        help="seconds after the last order for all to end (90 + orders/20)")
    parser.add_argument("--no-faults", action="store_true",
                        help="a fault-free baseline: only the orders' own paths")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    parser.add_argument("--workdir", type=Path, default=Path(".stepsaga/reliability"))
    args = parser.parse_args(argv)
    if args.orders < 1 or args.workers < 1 or args.rate <= 0:
        parser.error("--orders, --workers and --rate must be positive")
    databases = ("sqlite", "postgres") if args.database == "both" else (args.database,)
    failed = False
    for database in databases:
        report = asyncio.run(run(RunOptions(
            orders=args.orders, database=database, seed=args.seed, workers=args.workers,
            rate=args.rate, bound=args.bound or 90 + args.orders / 20,
            postgres_url=args.postgres_url, workdir=args.workdir,
            faults=NO_FAULTS if args.no_faults else FaultRates())))
        print(report.render(), flush=True)
        failed = failed or not report.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
