"""The reference model a first champion must beat: gradient boosting on the same features."""

import numpy as np
import pandas as pd

from ml.preprocessing import (
    TRANSACTION_CATEGORICAL,
    absent_fields,
    numeric_columns,
    unavailable,
    with_ratios,
)


def baseline_scores(rows: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Fraud probabilities for `test` from scikit-learn's HistGradientBoosting fitted on the
    train split of `rows` (the same inputs as the network, categories native), weighted by its
    `weight` column when it has one."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    train = rows[rows["split"] == "train"]
    inputs = [*numeric_columns(rows.columns), *TRANSACTION_CATEGORICAL]
    columns = [c for c in inputs if c not in unavailable(inputs, absent_fields(train))]
    categories = {
        c: pd.CategoricalDtype(sorted(train[c].dropna().unique()))
        for c in TRANSACTION_CATEGORICAL
        if c in columns
    }

    def frame(part: pd.DataFrame) -> pd.DataFrame:
        return with_ratios(part)[columns].astype(categories)

    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    weights = train["weight"].to_numpy() if "weight" in train else None
    model.fit(frame(train), train["label"], sample_weight=weights)
    return model.predict_proba(frame(test))[:, 1]
