"""``python -m tests.reliability``: one fault-injection run; exit 1 on any violation."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from pathlib import Path

from .harness import DEFAULT_PG, RunOptions, run
from .plan import NO_FAULTS, PATHS, FaultRates


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
    defaults = FaultRates()
    parser.add_argument("--db-outage", type=float, default=defaults.db_outage_seconds,
                        metavar="SECONDS", help="the database down once: PostgreSQL stopped "
                        "-m immediate (a cluster of the run's own), SQLite's disk full "
                        f"(tmpfs); 0: off ({defaults.db_outage_seconds:g})")
    parser.add_argument("--aws-outage", type=float, default=defaults.aws_outage_seconds,
                        metavar="SECONDS", help="AWS unreachable once (the workers' proxy "
                        f"to the emulator); 0: off ({defaults.aws_outage_seconds:g})")
    parser.add_argument("--freeze", type=float, default=defaults.freeze_seconds,
                        metavar="SECONDS", help="a transaction frozen on the hot row once "
                        f"(PostgreSQL); 0: off ({defaults.freeze_seconds:g})")
    parser.add_argument("--clock-skew", type=float, default=defaults.clock_skew_seconds,
                        metavar="SECONDS", help="worker 0's clock ahead by this much "
                        f"(PostgreSQL); 0: off ({defaults.clock_skew_seconds:g})")
    parser.add_argument("--duplicate", type=float, default=defaults.duplicate,
                        metavar="SHARE", help="received messages put back on their queue "
                        f"(a duplicate delivery) ({defaults.duplicate:g})")
    parser.add_argument("--rule-off", type=float, default=defaults.rule_off_seconds,
                        metavar="SECONDS", help="the supervision rules disabled once (hand-"
                        "offs re-published after, or lost); 0: off "
                        f"({defaults.rule_off_seconds:g})")
    parser.add_argument("--abort-every", type=float, default=defaults.abort_every,
                        metavar="SECONDS", help="mean seconds between StopExecution calls "
                        "on a running supervisor execution; 0: off "
                        f"({defaults.abort_every:g})")
    parser.add_argument("--paths", default=None, metavar="PATH,...",
                        help=f"only orders of these paths ({','.join(PATHS)})")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    parser.add_argument("--workdir", type=Path, default=Path(".stepsaga/reliability"))
    args = parser.parse_args(argv)
    if args.orders < 1 or args.workers < 1 or args.rate <= 0:
        parser.error("--orders, --workers and --rate must be positive")
    faults = NO_FAULTS if args.no_faults else replace(
        defaults, db_outage_seconds=args.db_outage, aws_outage_seconds=args.aws_outage,
        freeze_seconds=args.freeze, clock_skew_seconds=args.clock_skew,
        duplicate=args.duplicate, rule_off_seconds=args.rule_off,
        abort_every=args.abort_every)
    databases = ("sqlite", "postgres") if args.database == "both" else (args.database,)
    failed = False
    for database in databases:
        report = asyncio.run(run(RunOptions(
            orders=args.orders, database=database, seed=args.seed, workers=args.workers,
            rate=args.rate, bound=args.bound or 90 + args.orders / 20,
            postgres_url=args.postgres_url, workdir=args.workdir,
            faults=faults,
            paths=tuple(args.paths.split(",")) if args.paths else None)))
        print(report.render(), flush=True)
        failed = failed or not report.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
