"""Benchmark: the promotion gate's comparison against the simulator's truth on the same rows. On
a `make demo` state (FRAUD_HOME), champion and challenger score the latest training set's test
split; the paired bounds of challenger − champion are printed as the gate computes them (labels
known so far, an early report standing for the unreported frauds of its age), as before that
correction (the weights only on the reported frauds), on the reported labels alone, and on every
fraud the simulator made (reported or not). Give the demo's settings:

    python -m bench.gate_truth --seed 1 --scenario new_fraud_pattern --old 1 --new 2 \
        [--days 90 --drift-days 10 --customers 2000 --today 2026-12-06]"""

import argparse
import datetime as dt
import sys


def _truth(test, args):
    """Whether each test row was a fraud in the simulator (the demo's own network, re-run)."""
    import numpy as np

    from bench.loop import simulator_truth
    from simulator.network import PaymentNetwork

    start = args.today - dt.timedelta(days=args.days + args.drift_days)
    network = PaymentNetwork(args.customers, args.seed, start, scenario=args.scenario,
                             drift_day=args.days)  # fmt: skip
    truth = simulator_truth(network, start, args.today - dt.timedelta(days=1))
    return np.array([truth[t] for t in test["transaction_id"]], dtype=float)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gate_truth", description=__doc__)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--old", required=True, help="the champion's registry version")
    parser.add_argument("--new", required=True, help="the challenger's registry version")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--drift-days", type=int, default=10)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--today", type=dt.date.fromisoformat, default=dt.date.today())
    args = parser.parse_args(argv)

    import mlflow
    import pyarrow.compute as pc

    from lakehouse.delta import ALL_DAYS
    from ml.comparison import paired_bootstrap
    from ml.promotion import scores_of
    from ml.registry import MODEL_NAME
    from resources import build_resources
    from settings.env import prepare_process_environment

    prepare_process_environment()
    resources = build_resources()
    mlflow.set_tracking_uri(resources["mlflow"].tracking_uri)
    test = (
        resources["lakehouse"]
        .read("features", "training_set", *ALL_DAYS, filter_expression=pc.field("split") == "test")
        .to_pandas()
    )
    truth = _truth(test, args)
    scores = [
        scores_of(mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}"), test)
        for version in (args.old, args.new)
    ]
    reported, weight = test["label"].to_numpy(), test["weight"].to_numpy()
    estimated = (reported * weight).sum()
    print(
        f"test split: {len(test):,} rows, {int(reported.sum())} frauds reported, "
        f"{estimated:.0f} estimated, {int(truth.sum())} in the simulator"
    )
    ways = {
        "gate (labels known so far)": (reported * weight, None),
        "weights on reported only": (reported, weight),
        "reported labels, unweighted": (reported, None),
        "truth (every fraud)": (truth, None),
    }
    for name, (labels, weights) in ways.items():
        found = paired_bootstrap(labels, *scores, weights=weights, clusters=test["card_id"])
        print(f"{name:28} " + "  ".join(
            f"{metric} {p.champion:.3f} -> {p.challenger:.3f}: {p.difference:+.3f} "
            f"[{p.low:+.3f}, {p.high:+.3f}]" for metric, p in found.items()
        ))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
