"""Drift detection (monitoring.drift): Evidently's preset finds a shifted column and nothing
between two samples of one distribution; a sketch of the reference gives the full reference's
verdicts."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.drift import EmptyWindow, _apportion, detect_drift, sketch
from simulator.network import PaymentNetwork

pytestmark = pytest.mark.unit
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


def _simulated(scenario: str, first: int, last: int) -> pd.DataFrame:
    """Transactions of simulated days [first, last] (drift from day 7), as a monitor sees them."""
    import datetime as dt

    network = PaymentNetwork(800, seed=3, start=dt.date(2026, 3, 1), scenario=scenario, drift_day=7)
    days = [d.transactions for d in network.days(last + 1)][first:]
    hours = np.concatenate([(t.ts_ms // 3_600_000) % 24 for t in days])
    return pd.DataFrame(
        {
            "amount_usd": np.concatenate([t.amount_usd for t in days]),
            "hour": hours.astype("float64"),
            "channel": np.where(np.concatenate([t.online for t in days]), "online", "pos"),
        }
    )


def test_simulated_amount_inflation_drifts_and_the_baseline_does_not():
    reference = _simulated("baseline", 0, 6)
    columns = (["amount_usd", "hour"], ["channel"])
    same = detect_drift(reference, _simulated("baseline", 7, 13), *columns)
    assert same.drifted_columns == []
    inflated = detect_drift(reference, _simulated("amount_inflation", 7, 13), *columns)
    assert inflated.drifted_columns == ["amount_usd"]


def test_edge_windows_give_a_verdict_or_a_clear_error():
    reference = _window(3_000, seed=6)
    current = _window(1_500, seed=7).assign(count=np.nan, channel="kiosk")  # a new category
    result = detect_drift(reference.assign(constant=1.0), current.assign(constant=1.0),
                          [*NUMERIC, "constant"], CATEGORICAL)  # fmt: skip
    verdicts = {c.column: (c.method, c.drifted) for c in result.columns}
    assert verdicts["count"] == ("all missing in current", True)
    assert verdicts["channel"][1] and not verdicts["constant"][1]
    with pytest.raises(EmptyWindow, match="the current window has no row"):
        detect_drift(reference, current.iloc[:0], NUMERIC, CATEGORICAL)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=30), st.integers(1, 5_000))
def test_category_rows_are_apportioned_to_the_total_each_within_one_row(counts, rows):
    shares = np.array(counts) / sum(counts)
    got = _apportion(shares, rows)
    assert got.sum() == rows and (got >= 0).all()
    assert np.all(np.abs(got - shares * rows) < 1)
