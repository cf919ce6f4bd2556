"""Metrics that matter for fraud, on scores (probabilities) and labels."""

import numpy as np


def fraud_metrics(labels, scores, alert_share: float = 0.005, weights=None) -> dict[str, float]:
    """PR-AUC, ROC AUC, recall at 1% false-positive rate, precision when the top `alert_share`
    of transactions are sent to analysts (the alert budget), and the Brier score. `weights` is a
    training set's `weight` column: a fraud reported early stands for that many frauds, the
    unreported ones of its age among the rows that look legitimate (`ml.comparison`)."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    from ml.comparison import average_precision, recall_at_fpr

    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(np.unique(labels)) < 2:
        raise ValueError("metrics need both classes among the labels")
    frauds = labels * weights
    return {
        "pr_auc": average_precision(frauds, scores),
        "roc_auc": float(roc_auc_score(labels, scores, sample_weight=weights)),
        "recall_at_1pct_fpr": recall_at_fpr(frauds, scores),
        "precision_at_budget": precision_at_budget(frauds, scores, alert_share),
        "brier": float(brier_score_loss(labels, scores, sample_weight=weights)),
        "positives": int(labels.sum()),
        "rows": len(labels),
    }


def precision_at_budget(frauds: np.ndarray, scores: np.ndarray, alert_share: float) -> float:
    """The frauds (per row: 0/1, or what an early report stands for) among the top
    `alert_share` of rows by score (at least one row), as a share of those rows."""
    alerts = max(1, round(len(scores) * alert_share))
    top = np.argsort(-scores, kind="stable")[:alerts]
    return float(min(1.0, np.asarray(frauds)[top].sum() / alerts))


def card_precision_at_k(
    days: np.ndarray, cards: np.ndarray, labels: np.ndarray, scores: np.ndarray, k: int = 100
) -> float:
    """The handbook's Card Precision@k: each day, every card's highest score and whether it had
    a fraud that day; the share of frauds among the k highest cards; a card found on an earlier
    day is no longer counted. The mean over the days."""
    import pandas as pd

    per_card = (
        pd.DataFrame({"day": days, "card": cards, "label": labels, "score": scores})
        .groupby(["day", "card"], sort=True)
        .agg(label=("label", "max"), score=("score", "max"))
        .reset_index()
    )
    caught: set = set()
    precisions = []
    for _, day in per_card.groupby("day", sort=True):
        day = day[~day["card"].isin(caught)]
        top = day.sort_values("score", ascending=False, kind="stable").head(k)
        found = top.loc[top["label"] == 1, "card"]
        precisions.append(len(found) / k)
        caught.update(found)
    return float(np.mean(precisions)) if precisions else float("nan")


REPORTED = {"roc_auc": "ROC AUC", "card_precision_at_100": "Card Precision@100"}


def reported_figures(rows, scores) -> dict[str, float]:
    """Figures shown beside the decision metrics: ROC AUC and Card Precision@100 (per day, of
    rows with `label`, `day` and `card_id`)."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(rows["label"]) > 0
    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "card_precision_at_100": card_precision_at_k(
            np.asarray(rows["day"]), np.asarray(rows["card_id"]), labels.astype(int), scores
        ),
    }
