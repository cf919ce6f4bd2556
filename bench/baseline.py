"""Benchmark: the champion against a tuned gradient-boosting baseline on the same features, on
the platform's own training set (run `make demo` first, or point FRAUD_HOME at a home that has
a champion).

    python -m bench.baseline

The baseline's settings are chosen on the validation split from `ml.baseline.BASELINE_GRID`;
both models then score the test split (recent rows of held-out cards), compared with the gate's
paired bootstrap by card (labels weighted as the training set weights them). Then the baseline
again without the settled merchant risk, to measure what those features add here.
"""

import sys

import numpy as np


def main() -> int:
    import mlflow
    from deltalake import DeltaTable

    from ml.baseline import BASELINE_GRID, Baseline
    from ml.comparison import paired_bootstrap
    from ml.metrics import fraud_metrics
    from ml.promotion import scores_of
    from ml.registry import load_by_alias
    from ml.train import row_weights
    from settings.env import fraud_home, mlflow_tracking_uri, prepare_process_environment

    prepare_process_environment()
    path = fraud_home() / "lakehouse/features/training_set"
    if not path.exists():
        print(f"no training set at {path}: run `make demo` first")
        return 1
    mlflow.set_tracking_uri(mlflow_tracking_uri())
    model, version = load_by_alias("champion")
    rows = DeltaTable(str(path)).to_pandas()
    train, valid, test = (rows[rows["split"] == s] for s in ("train", "validation", "test"))
    labels = test["label"].to_numpy() * row_weights(test)

    def pr_auc(part, scores):
        return fraud_metrics(part["label"], scores, weights=row_weights(part))["pr_auc"]

    def tuned(columns_out: list[str]):
        fits = [Baseline.fit(train.drop(columns=columns_out), p) for p in BASELINE_GRID]
        best = max(fits, key=lambda f: pr_auc(valid, f.score(valid.drop(columns=columns_out))))
        return best, best.score(test.drop(columns=columns_out))

    baseline, baseline_scores = tuned([])
    champion_scores = scores_of(model, test)
    paired = paired_bootstrap(labels, baseline_scores, champion_scores,
                              clusters=test["card_id"].to_numpy())["pr_auc"]  # fmt: skip
    print(f"training set: {len(train):,} train / {len(valid):,} validation / {len(test):,} test "
          f"rows, {int(test['label'].sum())} test frauds")  # fmt: skip
    print(f"baseline settings chosen on validation: {baseline.model.get_params()['learning_rate']}"
          f" lr, {baseline.model.get_params()['max_leaf_nodes']} leaves, "
          f"{baseline.model.get_params()['min_samples_leaf']} per leaf, "
          f"l2 {baseline.model.get_params()['l2_regularization']}")  # fmt: skip
    print(f"test PR-AUC: champion v{version} {paired.challenger:.4f}, tuned baseline "
          f"{paired.champion:.4f}; champion - baseline {paired.difference:+.4f} "
          f"[{paired.low:+.4f}, {paired.high:+.4f}] (one-sided 95% bounds, by card)")  # fmt: skip
    settled = [c for c in rows if c.startswith("merchant_daily__settled_")]
    _, without = tuned(settled)
    print(
        f"tuned baseline without the settled merchant risk: {pr_auc(test, without):.4f} "
        f"(with: {pr_auc(test, baseline_scores):.4f})"
    )
    print(
        f"ROC AUC: champion {_auc(test, champion_scores):.4f}, baseline "
        f"{_auc(test, baseline_scores):.4f}"
    )
    return 0


def _auc(rows, scores) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.asarray(rows["label"]) > 0, scores))


if __name__ == "__main__":
    sys.exit(main())
