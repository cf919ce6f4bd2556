"""Benchmark: the cost curve of the offline path. For each size (days x customers), from
simulation through landing -> bronze/silver/gold -> features -> the training set -> one training
run, each step in a process of its own, its wall time and the peak memory of its process tree;
then each step's growth from the first size to the others beside the growth in transactions
(linear when the two match).

    python -m bench.scale [--sizes 30x21000,300x21000] [--epochs 1]

The default sizes are ~1M and ~10M transactions. The training run is one trial of `--epochs`
epochs, then the final fit by two Ray Train workers of as many epochs."""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.lakehouse import GIB, landed, pipeline_steps, run_steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--sizes", default="30x21000,300x21000")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep each size's FRAUD_HOME")
    args = parser.parse_args(argv)

    runs = []
    for size in args.sizes.split(","):
        days, customers = map(int, size.split("x"))
        home = Path(tempfile.mkdtemp(prefix=f"fraud-scale-{size}-"))
        print(f"\n{days} days x {customers:,} customers (FRAUD_HOME={home})", flush=True)
        training = [sys.executable, "-m", "bench.run_layer", "--select",
                    "key:training/tuned_model", "--config", "num_samples=1",
                    "--config", f"max_epochs={args.epochs}"]  # fmt: skip
        steps = [*pipeline_steps(days, customers, args.seed), ("training", training)]
        measured = run_steps(home, steps)
        transactions = landed(home)
        print(f"transactions: {transactions:,}")
        runs.append((size, transactions, measured))
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)

    (first, base, base_steps), *others = runs
    print(f"\ngrowth from {first} ({base:,} transactions): wall and peak ratios per step")
    for size, transactions, measured in others:
        print(f"{size}: {transactions / base:.1f}x the transactions")
        for name, (wall, peak) in measured.items():
            wall0, peak0 = base_steps[name]
            print(
                f"  {name:14} {wall:8.1f} s ({wall / wall0:5.1f}x)"
                f" {peak / GIB:6.2f} GiB ({peak / peak0:4.1f}x)"
            )
        to_training_set = [w for n, (w, _) in measured.items() if n not in ("simulate", "training")]
        peaks = [p for n, (_, p) in measured.items() if n not in ("simulate", "training")]
        print(
            f"  landing -> training set: {sum(to_training_set) / 60:.1f} min, "
            f"peak {max(peaks) / GIB:.2f} GiB"
        )
    print(f"machine: {os.cpu_count()} cores; date {time.strftime('%Y-%m-%d')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
