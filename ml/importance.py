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
