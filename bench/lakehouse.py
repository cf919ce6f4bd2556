"""Benchmark: ~1M simulated transactions, landing -> gold -> features -> training set; wall time
and peak memory per step.

    python -m bench.lakehouse [--days 30 --customers 21000]

Each step runs as its own process (definitions import, Spark start and dbt start included), as
a scheduled run would. Targets on a 2-core machine: <= 3 min landing -> gold, <= 6 GiB peak.
The training set is built with matured labels and maturity_days=0, so that every one of the
~1M labels is used as it stands.
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


def pipeline_steps(days: int, customers: int, seed: int) -> list[tuple[str, list[str]]]:
    """(name, command) of each step from simulation to the training set, as its own process."""
    start = dt.date(2026, 1, 1)
    end = start + dt.timedelta(days=days - 1)
    python = sys.executable
    return [
        ("simulate", [python, "-m", "simulator", "generate", "--days", str(days),
                      "--customers", str(customers), "--seed", str(seed)]),
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
        ("training set", [python, "-m", "bench.run_layer", "--select",
                          "key:features/training_set", "--config", 'label_policy="matured"',
                          "--config", "maturity_days=0"]),
    ]  # fmt: skip


def run_steps(home: Path, steps: list[tuple[str, list[str]]]) -> dict[str, tuple[float, int]]:
    """Run each step with FRAUD_HOME=`home`, printing its wall seconds and peak memory as it
    ends; {name: (wall s, peak bytes)}. A failed step stops the run (SystemExit)."""
    env = {**os.environ, "FRAUD_HOME": str(home), "PYTHONPATH": os.getcwd()}
    print(f"{'step':14} {'wall s':>8} {'peak GiB':>9}")
    measured = {}
    for name, command in steps:
        code, wall, peak = run_measured(command, env=env)
        if code:
            raise SystemExit(f"{name} failed with exit code {code}")
        print(f"{name:14} {wall:8.1f} {peak / GIB:9.2f}", flush=True)
        measured[name] = (wall, peak)
    return measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--customers", type=int, default=21000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark FRAUD_HOME")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="fraud-bench-"))
    print(f"fraud-platform lakehouse benchmark: {args.days} days, {args.customers} customers")
    measured = run_steps(home, pipeline_steps(args.days, args.customers, args.seed))
    layers = [measured[name] for name in ("bronze", "silver", "gold")]
    print(f"transactions landed: {landed(home):,}")
    print(
        f"landing -> gold: {sum(w for w, _ in layers):.1f} s wall, "
        f"{max(p for _, p in layers) / GIB:.2f} GiB peak"
    )
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


def landed(home: Path) -> int:
    return sum(sum(1 for _ in p.open()) - 1 for p in (home / "landing/transactions").glob("*.csv"))


if __name__ == "__main__":
    sys.exit(main())
