"""Benchmark: ~1M simulated transactions, landing -> gold -> features -> training set; wall time
and peak memory per step.

    python -m bench.lakehouse [--days 30 --customers 21000]

Each step runs as its own process (definitions import, Spark start and dbt start included), as
a scheduled run would. Targets on a 2-core machine: <= 3 min landing -> gold, <= 6 GiB peak.
The training set is built with maturity_days=0, so that every one of the ~1M labels is used.
"""

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.process_tree import run_measured

GIB = 1024**3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--customers", type=int, default=21000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark FRAUD_HOME")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="fraud-bench-"))
    env = {**os.environ, "FRAUD_HOME": str(home), "PYTHONPATH": os.getcwd()}
    start = dt.date(2026, 1, 1)
    end = start + dt.timedelta(days=args.days - 1)
    python = sys.executable
    steps = [
        ("simulate", [python, "-m", "simulator", "generate", "--days", str(args.days),
                      "--customers", str(args.customers), "--seed", str(args.seed)]),
    ] + [
        (name, [python, "-m", "bench.run_layer", "--select", selection,
                "--start", start.isoformat(), "--end", end.isoformat()])
        for name, selection in (
            ("bronze", "group:bronze"),
            ("silver", "group:silver"),
            ("gold", "group:gold"),
            ("features", "group:features and not key:features/training_set"),
        )
    ] + [
        ("training", [python, "-m", "bench.run_layer", "--select", "key:features/training_set",
                      "--config", "maturity_days=0"]),
    ]  # fmt: skip
    print(f"fraud-platform lakehouse benchmark: {args.days} days, {args.customers} customers")
    print(f"{'step':10} {'wall s':>8} {'peak GiB':>9}")
    pipeline_wall, pipeline_peak = 0.0, 0
    for name, command in steps:
        code, wall, peak = run_measured(command, env=env)
        if code:
            print(f"{name} failed with exit code {code}")
            return code
        print(f"{name:10} {wall:8.1f} {peak / GIB:9.2f}", flush=True)
        if name in ("bronze", "silver", "gold"):
            pipeline_wall += wall
            pipeline_peak = max(pipeline_peak, peak)
    print(f"transactions landed: {_count(home):,}")
    print(f"landing -> gold: {pipeline_wall:.1f} s wall, {pipeline_peak / GIB:.2f} GiB peak")
    print(f"training set rows: {_training_rows(home):,}")
    print(f"machine: {os.cpu_count()} cores; date {time.strftime('%Y-%m-%d')}")
    if args.keep:
        print(f"kept FRAUD_HOME={home}")
    else:
        shutil.rmtree(home, ignore_errors=True)
    return 0


def _training_rows(home: Path) -> int:
    from deltalake import DeltaTable

    return (
        DeltaTable(str(home / "lakehouse/features/training_set")).to_pyarrow_dataset().count_rows()
    )


def _count(home: Path) -> int:
    return sum(sum(1 for _ in p.open()) - 1 for p in (home / "landing/transactions").glob("*.csv"))


if __name__ == "__main__":
    sys.exit(main())
