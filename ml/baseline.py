"""The reference model a first champion must beat: gradient boosting on the same features."""

import itertools
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ml.preprocessing import (
    TRANSACTION_CATEGORICAL,
    absent_fields,
    numeric_columns,
    unavailable,
    with_ratios,
)


@dataclass(frozen=True)
class BaselineParams:
    """scikit-learn's HistGradientBoosting settings (its defaults); early stopping on a held-out
    share of the rows picks the number of trees up to `max_iter`."""

    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 20
    l2_regularization: float = 0.0
    max_iter: int = 100


# The search a baseline gets in a benchmark before it is compared with anything.
BASELINE_GRID = [
    BaselineParams(lr, leaves, leaf, l2, max_iter=400)
    for lr, leaves, leaf, l2 in itertools.product((0.05, 0.1), (15, 63), (20, 200), (0.0, 1.0))
]


@dataclass
class Baseline:
    """A fitted baseline: its inputs, their categories, and the model."""

    columns: list[str]
    categories: dict[str, pd.CategoricalDtype]
    model: object

    @classmethod
    def fit(cls, train: pd.DataFrame, params: BaselineParams = BaselineParams()) -> "Baseline":
        """Fit on `train` (the same inputs as the network, categories native, inputs of absent
        fields left out), weighted by its `weight` column when it has one."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        inputs = [*numeric_columns(train.columns), *TRANSACTION_CATEGORICAL]
        columns = [c for c in inputs if c not in unavailable(inputs, absent_fields(train))]
        categories = {
            c: pd.CategoricalDtype(sorted(train[c].dropna().unique()))
            for c in TRANSACTION_CATEGORICAL
            if c in columns
        }
        model = HistGradientBoostingClassifier(
            **asdict(params),
            categorical_features="from_dtype",
            random_state=0,
        )
        baseline = cls(columns, categories, model)
        weights = train["weight"].to_numpy() if "weight" in train else None
        model.fit(baseline._inputs(train), train["label"], sample_weight=weights)
        return baseline

    def _inputs(self, rows: pd.DataFrame) -> pd.DataFrame:
        return with_ratios(rows)[self.columns].astype(self.categories)

    def score(self, rows: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(self._inputs(rows))[:, 1]


def baseline_scores(rows: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Fraud probabilities for `test` from the baseline fitted on the train split of `rows`."""
    return Baseline.fit(rows[rows["split"] == "train"]).score(test)
