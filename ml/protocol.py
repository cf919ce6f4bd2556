"""The card-fraud handbook's evaluation protocol (Le Borgne et al., 2022): a week of training, a
week's delay while its labels arrive, a week of test; cards known to be compromised leave the
test; AUC ROC and average precision over the pooled test, Card Precision@100 per day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.metrics import card_precision_at_k, fraud_metrics

CARD_PRECISION_K = 100


@dataclass(frozen=True)
class Fold:
    """Train on [train_start, +days), wait `delay` days, test on the `days` after."""

    train_start: dt.date
    days: int = 7
    delay: int = 7

    @property
    def train_end(self) -> dt.date:
        return self.train_start + dt.timedelta(days=self.days - 1)

    @property
    def test_start(self) -> dt.date:
        return self.train_start + dt.timedelta(days=self.days + self.delay)

    @property
    def test_end(self) -> dt.date:
        return self.test_start + dt.timedelta(days=self.days - 1)


def _folds(*starts: str) -> list[Fold]:
    return [Fold(dt.date.fromisoformat(s)) for s in starts]


# The handbook's published splits, on its dataset of 2018-04-01 .. 2018-09-30.
SINGLE_SPLIT = Fold(dt.date(2018, 7, 25))
PREQUENTIAL_TEST = _folds("2018-08-15", "2018-08-08", "2018-08-01", "2018-07-25")
PREQUENTIAL_VALIDATION = _folds("2018-07-11", "2018-07-04", "2018-06-27", "2018-06-20")


def _days(rows: pd.DataFrame, first: dt.date, last: dt.date) -> pd.Series:
    return (rows["day"] >= first) & (rows["day"] <= last)


def fold_train(rows: pd.DataFrame, fold: Fold) -> pd.DataFrame:
    """The fold's training week (every label of it is known by the test's first day)."""
    return rows[_days(rows, fold.train_start, fold.train_end)]


def fold_test(rows: pd.DataFrame, fold: Fold) -> pd.DataFrame:
    """The fold's test week, less each day's known-compromised cards: those with a fraud
    between the training start and `delay` + 1 days before that day."""
    test = rows[_days(rows, fold.test_start, fold.test_end)]
    frauds = rows[(rows["label"] == 1) & (rows["day"] >= fold.train_start)]
    keep = np.ones(len(test), dtype=bool)
    for day in sorted(test["day"].unique()):
        known_by = day - dt.timedelta(days=fold.delay + 1)
        known = frauds.loc[frauds["day"] <= known_by, "card_id"].unique()
        keep &= ~((test["day"] == day) & test["card_id"].isin(known)).to_numpy()
    return test[keep]


def evaluate(test: pd.DataFrame, scores: np.ndarray) -> dict[str, float]:
    """AUC ROC and average precision over the pooled test rows, Card Precision@100 per day."""
    metrics = fraud_metrics(test["label"], scores)
    return {
        "roc_auc": metrics["roc_auc"],
        "average_precision": metrics["pr_auc"],
        f"card_precision_at_{CARD_PRECISION_K}": card_precision_at_k(
            test["day"].to_numpy(),
            test["card_id"].to_numpy(),
            test["label"].to_numpy(),
            scores,
            CARD_PRECISION_K,
        ),
    }
