"""Decayed fraud report counts: the history's stored values, brought to any instant, are the
sums over the reports known then, by their definition."""

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.report_decay import (
    FEATURES,
    HORIZON,
    MAX_DAYS,
    SINCE,
    TAU_S,
    VIEW,
    DecayedReports,
    bring_to,
    report_history,
)

pytestmark = pytest.mark.unit
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
DAY = 86_400

reports = st.lists(
    st.tuples(
        st.sampled_from(["M1", "M2", "M3"]),
        st.integers(min_value=0, max_value=90 * DAY),  # seconds after T0, ties included
    ),
    max_size=40,
)


def _table(rows) -> pa.Table:
    return pa.table(
        {
            "merchant_id": [r[0] for r in rows],
            "reported_at": pa.array(
                [T0 + dt.timedelta(seconds=r[1]) for r in rows], pa.timestamp("us", tz="UTC")
            ),
        }
    )


def _by_definition(rows, merchant: str, at_s: int, tau: float) -> tuple[float, int]:
    """(the sum of exp(-age / tau) over the merchant's reports up to `at_s`, how many of them
    are older than the horizon: those may weigh or not, below 2e-4 each)."""
    ages = [at_s - s for m, s in rows if m == merchant and s <= at_s]
    return sum(math.exp(-a / tau) for a in ages), sum(a > HORIZON.total_seconds() for a in ages)


def _stored(history: pa.Table, i: int) -> dict[str, np.ndarray]:
    row = history.slice(i, 1).to_pylist()[0]
    return {f"{VIEW}__{f}": np.array([row[f]], dtype=float) for f in FEATURES} | {
        f"{VIEW}__missing": np.array([False])
    }


@settings(max_examples=200, deadline=None)
@given(reports, st.integers(min_value=0, max_value=20 * DAY))
def test_a_stored_row_read_later_holds_the_decayed_sum_of_the_reports_known_then(rows, later):
    history = report_history(_table(rows))
    assert history.num_rows == len(rows)
    for i, row in enumerate(history.to_pylist()):
        merchant = row["merchant_id"]
        reported_s = int((row["event_timestamp"] - T0).total_seconds())
        assert row["day"] == row["event_timestamp"].date()
        # A read at a later instant with no report of the merchant in between.
        following = [s for m, s in rows if m == merchant and s > reported_s]
        read_at = reported_s + min([later, *(s - reported_s - 1 for s in following)])
        columns = _stored(history, i)
        bring_to(columns, (T0.timestamp() + read_at))
        for name, tau in TAU_S.items():
            expected, old = _by_definition(rows, merchant, read_at, tau)
            got = columns[f"{VIEW}__{name}"][0]
            assert abs(got - expected) <= 1e-9 * max(expected, 1) + 2e-4 * old
        newest = max(s for m, s in rows if m == merchant and s <= read_at)
        assert columns[f"{VIEW}__{SINCE}"][0] == pytest.approx(
            min((read_at - newest) / DAY, MAX_DAYS)
        )


def test_reports_of_one_merchant_at_one_instant_all_carry_the_state_after_the_last():
    rows = [("M1", 0), ("M1", 5 * DAY), ("M1", 5 * DAY), ("M2", 5 * DAY)]
    history = report_history(_table(rows)).to_pylist()
    m1 = [r for r in history if r["merchant_id"] == "M1"]
    assert m1[0]["fraud_reports_decayed_1d"] == pytest.approx(1.0)
    assert [r["fraud_reports_decayed_1d"] for r in m1[1:]] == pytest.approx([2 + math.exp(-5)] * 2)
    m2 = next(r for r in history if r["merchant_id"] == "M2")
    assert m2["fraud_reports_decayed_7d"] == pytest.approx(1.0)


def test_rows_without_a_value_keep_the_defaults_and_the_days_since_are_capped():
    columns = {
        f"{VIEW}__fraud_reports_decayed_1d": np.array([0.0, 3.0]),
        f"{VIEW}__fraud_reports_decayed_7d": np.array([0.0, 3.0]),
        f"{VIEW}__{SINCE}": np.array([MAX_DAYS, 0.0]),
        f"{VIEW}__missing": np.array([True, False]),
    }
    bring_to(columns, np.array([1e9, 1e9]))  # the second: stored at epoch 0, read decades on
    assert columns[f"{VIEW}__fraud_reports_decayed_1d"].tolist() == [0.0, 0.0]
    assert columns[f"{VIEW}__{SINCE}"].tolist() == [MAX_DAYS, MAX_DAYS]


def test_a_merchant_quiet_past_the_horizon_starts_again_from_one_report():
    counts = DecayedReports()
    counts.add("M1", 0.0)
    counts.add("M1", 1.0)
    after = counts.add("M1", HORIZON.total_seconds() + 2.0)
    assert after["fraud_reports_decayed_7d"] == 1.0 and after[SINCE] == HORIZON.total_seconds() + 2


def test_an_empty_history_has_the_columns():
    history = report_history(_table([]))
    assert history.num_rows == 0 and set(FEATURES) <= set(history.column_names)
