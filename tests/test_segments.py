"""Segments: which segment a row is in, the figures per segment, and the gate refusing a
challenger that is worse in one segment with enough frauds while its overall figures hold."""

import numpy as np
import pandas as pd
import pytest

from ml.promotion import GatePolicy, compare_segments
from ml.segments import performance_by_segment, segments

pytestmark = pytest.mark.unit
T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _row(customer, days, device=None, amount=20.0, channel="pos"):
    return dict(customer_id=customer, event_timestamp=T0 + pd.Timedelta(days=days),
                device_id=device, amount_usd=amount, channel=channel,
                merchant_category="grocery", card_id=customer)  # fmt: skip


def test_each_row_gets_its_segments():
    rows = pd.DataFrame(
        [
            _row("a", 0, "d1", amount=10.0),
            _row("a", 29.5, "d1", amount=10.01),
            _row("a", 30, "d2", amount=1000.0),
            _row("a", 95, None, amount=1500.0, channel="online"),
        ]
    )
    got = segments(rows)
    assert got["amount_band"].tolist() == ["≤10", "10-50", "200-1000", ">1000"]
    assert got["customer_age"].tolist() == ["<30 days", "<30 days", "30-89 days", "90+ days"]
    assert got["device"].tolist() == ["new", "known", "new", "none"]
    assert got["channel"].tolist() == ["pos", "pos", "pos", "online"]


def test_a_field_the_data_lacks_makes_no_dimension():
    rows = pd.DataFrame([_row("a", 0), _row("b", 1)]).assign(channel=None, device_id=None)
    assert list(segments(rows).columns) == ["merchant_category", "amount_band", "customer_age"]


def test_history_decides_age_and_novelty():
    history = pd.DataFrame([_row("a", 0, "d1")])
    rows = pd.DataFrame([_row("a", 40, "d1"), _row("b", 40, "d9")])
    got = segments(rows, history=pd.concat([history, rows]))
    assert got["customer_age"].tolist() == ["30-89 days", "<30 days"]
    assert got["device"].tolist() == ["known", "new"]


def _scored(rng, n=4000):
    """Rows over two channels with frauds in both; the incumbent ranks well everywhere."""
    channel = np.where(np.arange(n) % 2 == 0, "pos", "online")
    labels = (rng.random(n) < 0.05).astype(float)
    good = np.clip(0.3 + 0.4 * labels + rng.normal(0, 0.15, n), 0, 1)
    rows = pd.DataFrame([_row(f"c{i}", i % 30, channel=c) for i, c in enumerate(channel)])
    return rows, labels, good


def test_the_gate_refuses_a_challenger_worse_in_one_segment():
    rng = np.random.default_rng(0)
    rows, labels, good = _scored(rng)
    challenger = good.copy()
    online = (rows["channel"] == "online").to_numpy()
    challenger[online] = rng.random(online.sum())  # no skill on online payments
    table, reasons = compare_segments(
        rows, rows, labels, good, challenger, GatePolicy(resamples=300)
    )
    assert any("channel = online" in r for r in reasons), reasons
    assert not any("channel = pos" in r for r in reasons)
    flagged = {(r["dimension"], r["segment"]) for r in table if r["worse"]}
    assert ("channel", "online") in flagged and ("channel", "pos") not in flagged
    _, reasons = compare_segments(rows, rows, labels, good, good + 1e-3, GatePolicy(resamples=300))
    assert reasons == []


def test_a_segment_with_too_few_frauds_is_shown_not_judged():
    rng = np.random.default_rng(1)
    rows, labels, good = _scored(rng, n=600)  # about 15 frauds per channel
    table, reasons = compare_segments(rows, rows, labels, good, rng.random(600), GatePolicy())
    channels = [r for r in table if r["dimension"] == "channel"]
    assert channels and all(r["figures"] == "too few frauds to judge" for r in channels)
    assert not any("channel" in r for r in reasons)
    measured = performance_by_segment(rows, labels, good, min_frauds=5)
    pos = next(r for r in measured if (r["dimension"], r["segment"]) == ("channel", "pos"))
    assert pos["figures"].startswith("PR-AUC ") and pos["frauds"] == int(labels[::2].sum())
