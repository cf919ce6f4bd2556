"""The champion's performance on a window whose labels have matured: Evidently's classification
report (precision, recall, ROC and PR curves at the decline threshold) and the fraud metrics
the promotion gate uses (PR-AUC, recall at 1% false positives)."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.metrics import fraud_metrics
from monitoring.reports import SavedReport


@dataclass(frozen=True)
class Performance(SavedReport):
    metrics: dict[str, float]  # ml.metrics.fraud_metrics, and precision/recall at `threshold`
    snapshot: object  # Evidently's Snapshot


def measure_performance(labels, scores, threshold: float) -> Performance:
    """Metrics of `scores` (fraud probabilities) against 0/1 `labels`; a transaction counts as
    flagged from `threshold` on. Raises ValueError unless both classes are present."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset

    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    metrics = fraud_metrics(labels, scores)
    flagged = scores >= threshold
    true_positives = int((flagged & (labels == 1)).sum())
    metrics["precision"] = true_positives / max(int(flagged.sum()), 1)
    metrics["recall"] = true_positives / max(int(labels.sum()), 1)
    frame = pd.DataFrame({"label": labels, "score": scores})
    definition = DataDefinition(
        classification=[
            BinaryClassification(target="label", prediction_probas="score", pos_label=1)
        ],
        numerical_columns=["score"],
    )
    preset = ClassificationPreset(probas_threshold=threshold)
    snapshot = Report([preset]).run(Dataset.from_pandas(frame, data_definition=definition), None)
    return Performance(metrics=metrics, snapshot=snapshot)
