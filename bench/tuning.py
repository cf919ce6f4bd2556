"""Benchmark: Ray Tune's overhead, training throughput, and model quality vs a baseline.

    python -m bench.tuning [--trials 4 --epochs 4]

Reads the training set in $FRAUD_HOME (run `make demo` first). Runs the same trials three ways,
every trial for all epochs (no early stopping): through Ray Tune one at a time, plain
sequentially without Ray (the same sampled parameters, torch on one thread as in a one-CPU trial),
and through Ray Tune with as many at once as the CPUs allow.
Overhead = Ray one-at-a-time wall / sequential wall - 1 (target <= 10%).
Then the best trial's out-of-time test PR-AUC against HistGradientBoosting on the same features
(target: within 0.01 or better).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from deltalake import DeltaTable


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()

    import ray

    from ml.baseline import baseline_scores
    from ml.metrics import fraud_metrics
    from ml.train import TrainParams, train
    from ml.tuning import tune_model
    from settings.env import fraud_home, prepare_process_environment

    prepare_process_environment()
    path = fraud_home() / "lakehouse/features/training_set"
    if not path.exists():
        print(f"no training set at {path}: run `make demo` first")
        return 1
    rows = DeltaTable(str(path)).to_pandas()
    train_rows, valid_rows, test = (
        rows[rows["split"] == s] for s in ("train", "validation", "test")
    )
    cpus = os.cpu_count() or 2
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    common = dict(num_samples=args.trials, max_epochs=args.epochs, early_stopping=False)
    with tempfile.TemporaryDirectory() as storage:
        started = time.perf_counter()
        serial = tune_model(train_rows, valid_rows, storage=Path(storage), name="serial",
                            max_concurrent=1, **common)  # fmt: skip
        ray_serial = time.perf_counter() - started
        started = time.perf_counter()
        parallel = tune_model(train_rows, valid_rows, storage=Path(storage), name="parallel",
                              **common)  # fmt: skip
        ray_parallel = time.perf_counter() - started
    ray.shutdown()
    import torch

    # A Ray trial with one CPU runs torch on one thread (Ray sets OMP_NUM_THREADS=1): so does
    # the sequential run, or the comparison would measure thread counts, not Ray.
    torch.set_num_threads(1)
    started = time.perf_counter()
    for trial in serial.trials:
        train(train_rows, valid_rows, TrainParams(**trial["params"], epochs=args.epochs))
    sequential = time.perf_counter() - started
    rows_trained = len(train_rows) * args.epochs * args.trials

    best = fraud_metrics(test["label"], serial.best_model.score(test))
    baseline = fraud_metrics(test["label"], baseline_scores(rows, test))
    print(f"training set: {len(train_rows):,} train / {len(valid_rows):,} validation / "
          f"{len(test):,} test rows; {args.trials} trials x {args.epochs} epochs")  # fmt: skip
    print(
        f"sequential, no Ray:        {sequential:7.1f} s  ({rows_trained / sequential:,.0f} rows/s)"
    )
    print(f"Ray Tune, one at a time:   {ray_serial:7.1f} s  overhead "
          f"{ray_serial / sequential - 1:+.1%}")  # fmt: skip
    print(f"Ray Tune, {cpus} CPUs at once: {ray_parallel:7.1f} s  speed-up "
          f"{sequential / ray_parallel:.2f}x; best validation PR-AUC "
          f"{parallel.best_metrics['pr_auc']:.4f}")  # fmt: skip
    print(
        f"out-of-time test PR-AUC: model {best['pr_auc']:.4f}, HistGradientBoosting "
        f"{baseline['pr_auc']:.4f} (difference {best['pr_auc'] - baseline['pr_auc']:+.4f}); "
        f"recall at 1% FPR {best['recall_at_1pct_fpr']:.3f} vs {baseline['recall_at_1pct_fpr']:.3f}"
    )
    print(f"machine: {cpus} cores; date {time.strftime('%Y-%m-%d')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
