"""Metrics that matter for fraud, on scores (probabilities) and 0/1 labels."""

import numpy as np


def fraud_metrics(labels, scores, alert_share: float = 0.005, weights=None) -> dict[str, float]:
    """PR-AUC, recall at 1% false-positive rate, precision when the top `alert_share` of
    transactions are sent to analysts (the alert budget), and the Brier score; each row counts
    its weight (a training set's inverse-probability weights for labels still arriving)."""
    from sklearn.metrics import average_precision_score, brier_score_loss

    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(np.unique(labels)) < 2:
        raise ValueError("metrics need both classes among the labels")
    return {
        "pr_auc": float(average_precision_score(labels, scores, sample_weight=weights)),
        "recall_at_1pct_fpr": recall_at_fpr(labels, scores, 0.01, weights),
        "precision_at_budget": precision_at_budget(labels, scores, alert_share, weights),
        "brier": float(brier_score_loss(labels, scores, sample_weight=weights)),
        "positives": int(labels.sum()),
        "rows": len(labels),
    }


def recall_at_fpr(labels: np.ndarray, scores: np.ndarray, max_fpr: float, weights=None) -> float:
    """The highest recall of any threshold whose false-positive rate is at most `max_fpr`."""
    from sklearn.metrics import roc_curve

    # Every threshold: the default drops points that may be the last one within `max_fpr`.
    fpr, tpr, _ = roc_curve(labels, scores, sample_weight=weights, drop_intermediate=False)
    allowed = fpr <= max_fpr
    return float(tpr[allowed].max()) if allowed.any() else 0.0


def precision_at_budget(
    labels: np.ndarray, scores: np.ndarray, alert_share: float, weights=None
) -> float:
    """Precision among the top `alert_share` of rows by score (at least one row)."""
    alerts = max(1, round(len(scores) * alert_share))
    top = np.argsort(-scores, kind="stable")[:alerts]
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights)
    return float(np.average(labels[top], weights=weights[top]))
