"""Drift detection (ml.drift): Evidently's preset finds a shifted column and nothing between two
samples of one distribution; a sketch of the reference gives the full reference's verdicts."""

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.drift import _apportion, detect_drift, sketch

NUMERIC, CATEGORICAL = ["amount", "count"], ["channel"]


def _window(rows: int, seed: int, inflation: float = 1.0, online_share: float = 0.3):
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.0, 1.0, rows) * inflation
    amount[rng.random(rows) < 0.02] = np.nan
    channel = np.where(rng.random(rows) < online_share, "online", "pos").astype(object)
    return pd.DataFrame({"amount": amount, "count": rng.poisson(4, rows), "channel": channel})


def test_inflated_amounts_drift_and_a_second_sample_of_the_same_window_does_not():
    reference = _window(20_000, seed=1)
    inflated = detect_drift(reference, _window(5_000, seed=2, inflation=1.4), NUMERIC, CATEGORICAL)
    assert inflated.drifted_columns == ["amount"]
    assert inflated.drift_share == 1 / 3
    same = detect_drift(reference, _window(5_000, seed=3), NUMERIC, CATEGORICAL)
    assert same.drifted_columns == [] and same.drift_share == 0.0
    assert {c.column: c.method for c in same.columns} == {
        "amount": "Wasserstein distance (normed)",
        "count": "Wasserstein distance (normed)",
        "channel": "Jensen-Shannon distance",
    }


def test_a_sketched_reference_gives_the_full_references_scores_and_verdicts(tmp_path):
    reference = _window(60_000, seed=4)
    current = _window(5_000, seed=5, inflation=1.15, online_share=0.45)
    full = detect_drift(reference, current, NUMERIC, CATEGORICAL)
    small = sketch(pa.Table.from_pandas(reference), NUMERIC, CATEGORICAL, rows=6_000)
    assert len(small) == 6_000
    missing = small["amount"].isna().sum() - 6_000 * reference["amount"].isna().mean()
    assert abs(missing) <= 0.5  # missing values keep their share, to the row
    sketched = detect_drift(small, current, NUMERIC, CATEGORICAL)
    for a, b in zip(full.columns, sketched.columns, strict=True):
        assert (a.column, a.drifted) == (b.column, b.drifted)
        assert abs(a.score - b.score) < 0.01 * max(a.score, 0.01)
    html, json = sketched.save(tmp_path, "drift")
    assert html.stat().st_size > 0 and '"metrics"' in json.read_text()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=30), st.integers(1, 5_000))
def test_category_rows_are_apportioned_to_the_total_each_within_one_row(counts, rows):
    shares = np.array(counts) / sum(counts)
    got = _apportion(shares, rows)
    assert got.sum() == rows and (got >= 0).all()
    assert np.all(np.abs(got - shares * rows) < 1)
