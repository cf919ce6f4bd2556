"""Benchmark: the platform on the card-fraud handbook's public dataset, beside its published table.

    python -m bench.handbook [--samples 8] [--seeds 3] [--keep]

1. `python -m simulator handbook`: the dataset at its published size, its counts checked against
   the published ones, written as a Parquet table and imported with `ingest/mappings/handbook.yaml`.
2. bronze, silver, gold, the velocity and report features and Feast's registry for 2018-04-01 ..
   2018-10-07 (the reports of the last frauds arrive a week after the data ends), each step in
   its own process, timed with its peak memory.
3. In this process: gold's labels with fraud_model_v1's point-in-time features, then the
   handbook's protocol (`ml/protocol.py`): hyper-parameters chosen on the latest validation fold
   (Ray Tune for the platform's network, a grid for gradient boosting), then the single split
   and the four prequential test folds; the network over `--seeds` seeds. Again without the
   settled merchant-risk features, and without the decayed report counts, to measure what each
   adds.
Targets: prequential AP >= 0.70, AUC ROC >= 0.88, CP@100 >= 0.31; single split AP >= 0.67; the
whole run within 30 minutes on 2 cores.
"""

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.process_tree import run_measured

GIB = 1024**3
FIRST, LAST = dt.date(2018, 4, 1), dt.date(2018, 10, 7)
PUBLISHED_COUNTS = {"transactions": 1_754_155, "frauds": 14_681, 1: 973, 2: 9_077, 3: 4_631}
# The handbook's published results: (AUC ROC, AP, CP@100).
PUBLISHED_SINGLE = {
    "logistic regression": (0.871, 0.606, 0.291),
    "random forest": (0.867, 0.658, 0.287),
    "XGBoost": (0.862, 0.639, 0.273),
    "feed-forward network": (0.864, 0.653, 0.286),
}
PUBLISHED_PREQUENTIAL = {
    "logistic regression": ("0.868 ± 0.02", "0.623 ± 0.02", "0.297 ± 0.01"),
    "random forest": ("0.870 ± 0.02", "0.678 ± 0.01", "0.299 ± 0.01"),
    "XGBoost": ("0.869 ± 0.01", "0.687 ± 0.01", "0.303 ± 0.01"),
    "feed-forward network": ("0.876 ± 0.01", "0.675 ± 0.01", "0.303 ± 0.02"),
    "balanced bagging": ("0.879", "0.680", "0.305"),
}
METRICS = ("roc_auc", "average_precision", "card_precision_at_100")
SETTLED = "merchant_daily__settled_"
DECAYED = "merchant_fraud_reports__"
EPOCHS = 10


def pipeline(home: Path, env: dict) -> bool:
    python = sys.executable
    layer = [
        python,
        "-m",
        "bench.run_layer",
        "--start",
        FIRST.isoformat(),
        "--end",
        LAST.isoformat(),
    ]
    steps = [
        ("generate+import", [python, "-m", "simulator", "handbook"]),
        ("bronze", [*layer, "--select", "group:bronze"]),
        ("silver", [*layer, "--select", "group:silver"]),
        ("gold", [*layer, "--select", "group:gold"]),
        ("features", [*layer, "--select",
                      "key:features/card_velocity or key:features/customer_velocity "
                      "or key:features/merchant_fraud_reports or key:features/feast_registry"]),
    ]  # fmt: skip
    print(f"{'step':16} {'wall s':>8} {'peak GiB':>9}")
    for name, command in steps:
        code, wall, peak = run_measured(command, env=env)
        print(f"{name:16} {wall:8.1f} {peak / GIB:9.2f}", flush=True)
        if code:
            print(f"{name} failed with exit code {code}")
            return False
    return True


def check_counts(home: Path) -> None:
    frame = pd.read_parquet(home / "handbook" / "handbook_transactions.parquet")
    got = {
        "transactions": len(frame),
        "frauds": int(frame["TX_FRAUD"].sum()),
        **frame.loc[frame["TX_FRAUD"] == 1, "TX_FRAUD_SCENARIO"].value_counts().to_dict(),
    }
    for name, published in PUBLISHED_COUNTS.items():
        label = f"scenario {name}" if isinstance(name, int) else name
        verdict = "same" if got.get(name) == published else "DIFFERENT"
        print(f"  {label:14} {got.get(name, 0):>10,} published {published:>10,}  {verdict}")


def labelled_features(first: dt.date, last: dt.date) -> pd.DataFrame:
    """Every transaction of [first, last] with its label and its point-in-time features."""
    from features.training_set import ENTITY_COLUMNS, join_features
    from lakehouse.delta import read_days
    from resources import build_resources
    from settings.env import lakehouse_root

    labels = read_days(f"{lakehouse_root()}/gold/transaction_labels", first, last).to_pandas()
    labels = labels.assign(label=labels["is_fraud"].astype(int), weight=1.0)
    store = build_resources()["feast"].store()
    return join_features(store, labels[ENTITY_COLUMNS], "fraud_model_v1")


def epoch_holdout(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A fifth of the cards of a training week, held out to pick the network's best epoch."""
    held = pd.util.hash_pandas_object(rows["card_id"], index=False).to_numpy() % 5 == 0
    return rows[~held], rows[held]


def tune(rows: pd.DataFrame, home: Path, samples: int):
    """The network's parameters (Ray Tune) and the baseline's (grid), on the latest
    validation fold: (TrainParams, BaselineParams, their validation metrics)."""
    import ray

    from ml.baseline import BASELINE_GRID, Baseline
    from ml.protocol import PREQUENTIAL_VALIDATION, evaluate, fold_test, fold_train
    from ml.train import TrainParams
    from ml.tuning import tune_model

    fold = PREQUENTIAL_VALIDATION[0]
    train, valid = fold_train(rows, fold), fold_test(rows, fold)
    ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
    try:
        search = tune_model(train, valid, storage=home / "ray", name="handbook",
                            num_samples=samples, max_epochs=EPOCHS)  # fmt: skip
    finally:
        ray.shutdown()
    network = TrainParams(**search.best_params, epochs=EPOCHS)
    scored = [(evaluate(valid, Baseline.fit(train, p).score(valid)), p) for p in BASELINE_GRID]
    baseline_metrics, baseline = max(scored, key=lambda s: s[0]["average_precision"])
    network_metrics = evaluate(valid, search.best_model.score(valid))
    return network, baseline, network_metrics, baseline_metrics


def fold_metrics(rows, fold, network, baseline, seeds: int, without: list[str]) -> dict:
    """Per model, the fold's test metrics (the network's averaged over seeds)."""
    import dataclasses

    from ml.baseline import Baseline
    from ml.protocol import evaluate, fold_test, fold_train
    from ml.train import train

    fit_rows = fold_train(rows, fold).drop(columns=without)
    test = fold_test(rows, fold).drop(columns=without)
    fit, pick = epoch_holdout(fit_rows)
    runs = [
        evaluate(test, train(fit, pick, dataclasses.replace(network, seed=s)).score(test))
        for s in range(seeds)
    ]
    return {
        "platform network": {m: float(np.mean([r[m] for r in runs])) for m in METRICS},
        "gradient boosting": evaluate(test, Baseline.fit(fit_rows, baseline).score(test)),
    }


def report(title: str, results: dict[str, list[dict]], published: dict) -> None:
    print(f"\n{title}")
    print("| model | AUC ROC | AP | CP@100 |\n|---|---|---|---|")
    for name, values in published.items():
        print(f"| {name} (published) | " + " | ".join(map(str, values)) + " |")
    for name, folds in results.items():
        cells = []
        for metric in METRICS:
            values = [f[metric] for f in folds]
            spread = f" ± {np.std(values):.3f}" if len(values) > 1 else ""
            cells.append(f"{np.mean(values):.3f}{spread}")
        print(f"| {name} | " + " | ".join(cells) + " |")


def evaluation(home: Path, samples: int, seeds: int) -> None:
    from ml.protocol import PREQUENTIAL_TEST, PREQUENTIAL_VALIDATION, SINGLE_SPLIT

    started = time.perf_counter()
    rows = labelled_features(PREQUENTIAL_VALIDATION[-1].train_start, PREQUENTIAL_TEST[0].test_end)
    print(f"\nfeatures: {len(rows):,} labelled rows joined in {time.perf_counter() - started:.0f}s")
    started = time.perf_counter()
    network, baseline, network_valid, baseline_valid = tune(rows, home, samples)
    print(f"tuned in {time.perf_counter() - started:.0f}s: network {network}")
    print(f"  validation AP: network {network_valid['average_precision']:.3f}, "
          f"gradient boosting {baseline_valid['average_precision']:.3f} ({baseline})")  # fmt: skip
    ablations = {"": []}
    for label, prefix in ((" without the settled merchant risk", SETTLED),
                          (" without the decayed report counts", DECAYED)):  # fmt: skip
        ablations[label] = [c for c in rows if c.startswith(prefix)]
    for label, without in ablations.items():
        started = time.perf_counter()
        single = fold_metrics(rows, SINGLE_SPLIT, network, baseline, seeds, without)
        report(f"Single split{label}", {k: [v] for k, v in single.items()}, PUBLISHED_SINGLE)
        folds = [fold_metrics(rows, f, network, baseline, seeds, without) for f in PREQUENTIAL_TEST]
        by_model = {name: [f[name] for f in folds] for name in folds[0]}
        report(f"Prequential, 4 test folds{label}", by_model, PUBLISHED_PREQUENTIAL)
        print(f"({time.perf_counter() - started:.0f}s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=8, help="Ray Tune trials (default 8)")
    parser.add_argument("--seeds", type=int, default=3, help="network seeds per fold (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark FRAUD_HOME")
    parser.add_argument(
        "--home", type=Path, help="a FRAUD_HOME a run kept: evaluate only (the pipeline ran)"
    )
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="fraud-handbook-"))
    os.environ.update(FRAUD_HOME=str(home), FRAUD_PARTITIONS_START=FIRST.isoformat())
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    started = time.perf_counter()
    print(f"fraud-platform on the card-fraud handbook's dataset ({home})")
    try:
        if not args.home and not pipeline(home, env):
            return 1
        check_counts(home)
        from settings.env import prepare_process_environment

        prepare_process_environment()
        evaluation(home, args.samples, args.seeds)
    finally:
        print(f"\ntotal {time.perf_counter() - started:.0f}s")
        if not (args.keep or args.home):
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
