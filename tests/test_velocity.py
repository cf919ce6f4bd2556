"""Velocity features: the batch history and the stream counter are one definition."""

import datetime as dt

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.velocity import FEATURES, VelocityCounter, velocity_history

pytestmark = pytest.mark.unit
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

events = st.lists(
    st.tuples(
        st.sampled_from(["K1", "K2", "K3"]),
        st.integers(min_value=0, max_value=4 * 3600),  # seconds after T0, ties included
        st.floats(min_value=0.01, max_value=5000, allow_nan=False).map(lambda a: round(a, 2)),
    ),
    max_size=60,
)


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "card_id": [r[0] for r in rows],
            "event_timestamp": pd.to_datetime([T0 + dt.timedelta(seconds=r[1]) for r in rows]),
            "amount_usd": [r[2] for r in rows],
        }
    )


@settings(max_examples=200, deadline=None)
@given(events)
def test_the_batch_history_equals_what_the_stream_counter_pushes(rows):
    frame = _frame(rows)
    history = velocity_history(frame, "card_id")
    counter, after_instant = VelocityCounter(), {}
    for index in frame.sort_values("event_timestamp", kind="stable").index:
        card, at, amount = frame.loc[index, ["card_id", "event_timestamp", "amount_usd"]]
        # The online store's value once every event of the card at that instant is pushed.
        after_instant[card, at] = counter.add(card, at.to_pydatetime(), amount)
    for index, (card, at) in frame[["card_id", "event_timestamp"]].iterrows():
        batch, pushed = history.loc[index], after_instant[card, at]
        assert batch["card_id"] == card and batch["event_timestamp"] == at
        assert [batch[f] for f in FEATURES[:2]] == [pushed[f] for f in FEATURES[:2]]
        assert abs(batch["amount_sum_1h"] - pushed["amount_sum_1h"]) < 1e-6


def test_windows_include_their_edges_and_never_cross_cards():
    rows = [
        ("K1", 0, 1.0),
        ("K1", 600, 2.0),
        ("K1", 3600, 4.0),
        ("K1", 3601, 8.0),
        ("K2", 30, 16.0),
    ]
    history = velocity_history(_frame(rows), "card_id")
    assert history["txn_count_10m"].tolist() == [1, 2, 1, 2, 1]
    assert history["txn_count_1h"].tolist() == [1, 2, 3, 3, 1]  # 0 s is 3,600 s before 3,600 s
    assert history["amount_sum_1h"].tolist() == [1.0, 3.0, 7.0, 14.0, 16.0]


def test_events_at_one_instant_all_carry_the_state_after_the_last():
    rows = [("K1", 0, 1.0), ("K1", 60, 2.0), ("K1", 60, 4.0), ("K1", 60, 8.0), ("K1", 120, 1.0)]
    history = velocity_history(_frame(rows), "card_id")
    assert history["txn_count_1h"].tolist() == [1, 4, 4, 4, 5]
    assert history["amount_sum_1h"].tolist() == [1.0, 15.0, 15.0, 15.0, 16.0]


def test_an_empty_history_has_the_columns():
    history = velocity_history(_frame([]), "card_id")
    assert len(history) == 0 and set(FEATURES) <= set(history.columns)


def test_a_transaction_counted_again_changes_nothing():
    counter = VelocityCounter()
    first = counter.add("K1", T0, 10.0, "T1")
    assert counter.add("K1", T0 + dt.timedelta(minutes=1), 5.0, "T2")["txn_count_1h"] == 2
    assert counter.add("K1", T0, 10.0, "T1") is None  # a message delivered again
    after = counter.add("K1", T0 + dt.timedelta(minutes=2), 1.0, "T3")
    assert after == {"txn_count_10m": 3, "txn_count_1h": 3, "amount_sum_1h": 16.0}
    assert first["txn_count_1h"] == 1


def test_keys_idle_for_an_hour_leave_the_windows():
    counter = VelocityCounter()
    for i in range(100):
        counter.add(f"K{i}", T0, 1.0, f"T{i}")
    counter.add("K0", T0 + dt.timedelta(minutes=59), 1.0, "late")
    counter.add("fresh", T0 + dt.timedelta(minutes=61), 1.0, "F")
    assert counter.evict_idle() == 99  # K0's last event is a minute old; the rest are gone
    assert len(counter) == 2
    assert counter.add("K1", T0 + dt.timedelta(minutes=62), 1.0, "again")["txn_count_1h"] == 1
