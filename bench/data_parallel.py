"""Benchmark: the final fit in one process (2 torch threads) against Ray Train's data-parallel fit
(2 workers of 1 CPU each, gloo), on the training set of FRAUD_HOME (`make demo`'s, or
`bench.lakehouse --keep`'s) with the same parameters: training throughput (rows a second over the
epochs after the first), the whole fit's wall time (Ray Train's start included) and the test
split's PR-AUC of each, over `--seeds` seeds.

    python -m bench.data_parallel [--epochs 4] [--seeds 0,1]"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.data_parallel", description=__doc__)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args(argv)

    import torch

    from lakehouse.delta import ALL_DAYS
    from ml.data_parallel import fit_data_parallel
    from ml.metrics import fraud_metrics
    from ml.tracking import splits
    from ml.train import TrainParams, row_weights, train
    from resources import build_resources
    from resources.ray import RayResource
    from settings.env import prepare_process_environment

    prepare_process_environment()
    lakehouse = build_resources()["lakehouse"]
    split = splits(lakehouse.read("features", "training_set", *ALL_DAYS).to_pandas())
    rows, valid, test = split["train"], split["validation"], split["test"]
    print(f"training set: {len(rows):,} train / {len(valid):,} validation / {len(test):,} test")

    def pr_auc(model) -> float:
        return fraud_metrics(test["label"], model.score(test), weights=row_weights(test))["pr_auc"]

    def throughput(history: list[dict]) -> float:
        later = [h["train_seconds"] for h in history[1:]] or [history[0]["train_seconds"]]
        return len(rows) / statistics.mean(later)

    print(f"{'fit':24} {'seed':>4} {'rows/s':>9} {'wall s':>7} {'test PR-AUC':>11}")
    figures: dict[str, list[tuple[float, float]]] = {"one process": [], "Ray Train x2": []}
    for seed in map(int, args.seeds.split(",")):
        params = TrainParams(epochs=args.epochs, batch_size=args.batch_size, seed=seed)
        torch.set_num_threads(2)
        started = time.perf_counter()
        single = train(rows, valid, params)
        wall = time.perf_counter() - started
        figures["one process"].append((throughput(single.history), pr_auc(single)))
        print(f"{'one process, 2 threads':24} {seed:>4} {figures['one process'][-1][0]:>9,.0f} "
              f"{wall:>7.1f} {figures['one process'][-1][1]:>11.4f}", flush=True)  # fmt: skip
        with RayResource().session(), tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            fit = fit_data_parallel(rows, valid, params, storage=Path(folder), name="bench")
            wall = time.perf_counter() - started
        figures["Ray Train x2"].append((throughput(fit.history), pr_auc(fit.model)))
        print(f"{'Ray Train, 2 x 1 CPU':24} {seed:>4} {figures['Ray Train x2'][-1][0]:>9,.0f} "
              f"{wall:>7.1f} {figures['Ray Train x2'][-1][1]:>11.4f}", flush=True)  # fmt: skip
    one, two = (statistics.mean(f[0] for f in figures[k]) for k in figures)
    print(f"Ray Train throughput / one process: {two / one:.2f}")
    print(f"machine: {os.cpu_count()} cores; date {time.strftime('%Y-%m-%d')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
