"""How much the model relies on each input: permutation importance on held-out rows, the weights
the drift monitor gives each input's drift."""

from collections.abc import Callable

import numpy as np
import pandas as pd

IMPORTANCE_FILE = "feature_importance.json"  # logged with the model's MLflow run


def permutation_importance(
    score: Callable[[pd.DataFrame], np.ndarray],
    rows: pd.DataFrame,
    columns: list[str],
    weights: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Per input column, the drop in weighted PR-AUC when its values are shuffled across `rows`
    (labelled, held out), as a share of all drops: the shares sum to 1 (each at least 0; all
    equal when no column matters)."""
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(seed)
    labels = rows["label"].to_numpy()

    def pr_auc(frame: pd.DataFrame) -> float:
        return float(average_precision_score(labels, score(frame), sample_weight=weights))

    full = pr_auc(rows)
    drops = {}
    for column in columns:
        shuffled = rows.assign(**{column: rows[column].to_numpy()[rng.permutation(len(rows))]})
        drops[column] = max(0.0, full - pr_auc(shuffled))
    total = sum(drops.values())
    if total == 0:
        return {column: 1 / len(columns) for column in columns}
    return {column: drop / total for column, drop in drops.items()}


def logged_importance(run_id: str, inputs: list[str]) -> tuple[dict[str, float], str]:
    """The permutation importance per input logged with run `run_id`'s model, or equal shares
    when it has none: (shares, where they come from)."""
    import mlflow as mlflow_client

    try:
        found = mlflow_client.artifacts.load_dict(f"runs:/{run_id}/{IMPORTANCE_FILE}")
    except Exception as missing:  # a model logged without it: every input counts the same
        return {c: 1 / len(inputs) for c in inputs}, f"equal ({IMPORTANCE_FILE}: {missing})"
    source = f"permutation importance of run {run_id}"
    return {c: float(found.get(c, 0.0)) for c in inputs}, source
