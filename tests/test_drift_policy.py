"""The drift verdict: importance-weighted drift, prediction drift and missed frauds so far, each
against its threshold; the permutation importance that weights the inputs."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.importance import permutation_importance
from monitoring.drift_policy import DriftPolicy, MissedFrauds, judge, missed_frauds, weighted_drift

pytestmark = pytest.mark.unit
POLICY = DriftPolicy(
    weighted_drift_threshold=0.25, prediction_drift_threshold=0.1, missed_fraud_alpha=0.001
)


def _judge(*args, drift_share: float = 0.0, **kwargs):
    """A day's verdict; few of its inputs drifted unless said."""
    return judge(*args, drift_share=drift_share, **kwargs)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.booleans(), st.floats(0, 1)), min_size=0, max_size=40),
    st.randoms(use_true_random=False),
)
def test_missed_frauds_count_each_fraud_card_once_and_a_card_caught_once_is_caught(rows, rnd):
    cards = np.array([f"K{c}" for c, _, _ in rows], dtype=object)
    labels = np.array([int(f) for _, f, _ in rows], dtype=int)
    scores = np.array([s for _, _, s in rows], dtype=float)
    found, missed = missed_frauds(cards, labels, scores, 0.5)
    fraud_cards = {c for c, f, _ in rows if f}
    caught = {c for c, f, s in rows if f and s >= 0.5}
    assert found == len(fraud_cards) and missed == len(fraud_cards - caught)
    order = list(range(len(rows)))
    rnd.shuffle(order)
    assert missed_frauds(cards[order], labels[order], scores[order], 0.5) == (found, missed)


def test_the_missed_fraud_test_rarely_alarms_when_nothing_changed_and_sees_a_new_pattern():
    rng = np.random.default_rng(0)
    share, cards, reference = 0.35, 60, 150

    def window(extra: int = 0) -> MissedFrauds:
        """Today's and the reference's cards missed at the same rate, and `extra` new ones."""
        missed = rng.binomial(cards, share) + extra
        return MissedFrauds(cards + extra, missed, reference, rng.binomial(reference, share))

    # Nothing changed: the champion misses as in its reference window.
    p_values = np.array([window().p_value() for _ in range(2000)])
    assert np.mean(p_values < 0.01) <= 0.01 and np.mean(p_values < 0.001) <= 0.002
    # A new pattern the champion does not know: 30 more cards, all missed.
    drifted = np.array([window(extra=30).p_value() for _ in range(200)])
    assert np.mean(drifted < 0.001) > 0.5
    assert MissedFrauds(0, 0, reference, 50).p_value() == 1.0
    assert MissedFrauds(10, 5, 0, 0).p_value() == 1.0  # a reference without frauds: no test
    # A reference that missed none is a sample too: one miss today is no alarm.
    assert MissedFrauds(20, 1, 40, 0).p_value() > 0.3


def test_drift_counts_by_how_much_the_model_relies_on_the_drifted_inputs():
    importance = {"amount_usd": 0.5, "channel": 0.05, "merchant_category": 0.45}
    assert weighted_drift({"amount_usd": True, "channel": False}, importance) == 0.5
    assert weighted_drift({"channel": True, "unknown": True}, importance) == 0.05
    quiet = _judge(weighted_drift({"channel": True}, importance), 0.02, None, POLICY)
    assert not quiet.alarm and quiet.reasons == []
    assert quiet.figures["weighted_drift_threshold"] == 0.25


def test_each_signal_alone_raises_the_alarm_with_its_reason():
    calm = MissedFrauds(40, 12, 100, 30)
    [reason] = _judge(0.3, 0.0, calm, POLICY).reasons
    assert reason == "importance-weighted input drift 0.30 >= 0.25"
    assert _judge(0.0, 0.12, calm, POLICY).reasons == ["prediction drift 0.120 >= 0.1"]
    [reason] = _judge(0.0, 0.0, MissedFrauds(40, 30, 100, 30), POLICY).reasons
    assert reason.startswith("30 of 40 reported fraud cards missed (reference 30 of 100, p=")
    [reason] = _judge(0.1, 0.0, calm, POLICY, drift_share=0.37).reasons
    assert reason == "37% of inputs drifted >= 25%"
    verdict = _judge(0.0, 0.0, calm, POLICY, drift_share=0.24)
    assert not verdict.alarm and verdict.figures["fraud_cards_reported"] == 40
    assert verdict.figures["drift_share"] == 0.24


def test_a_lower_drift_alarms_only_when_it_lasts_the_sustained_days():
    policy = DriftPolicy(sustained_drift_threshold=0.15, sustained_days=2)
    assert not _judge(0.2, 0.0, None, policy).alarm  # the first day reported: nothing before it
    assert not _judge(0.2, 0.0, None, policy, earlier_drift=(0.3, 0.1)).alarm  # yesterday calm
    assert not _judge(0.14, 0.0, None, policy, earlier_drift=(0.2,)).alarm
    [reason] = _judge(0.16, 0.0, None, policy, earlier_drift=(0.0, 0.2)).reasons
    assert reason == "importance-weighted input drift 0.20, 0.16 >= 0.15 on 2 days running"
    three = DriftPolicy(sustained_drift_threshold=0.15, sustained_days=3)
    assert not _judge(0.2, 0.0, None, three, earlier_drift=(0.2,)).alarm
    assert _judge(0.2, 0.0, None, three, earlier_drift=(0.15, 0.2)).alarm


def test_permutation_importance_finds_the_input_the_model_reads():
    rng = np.random.default_rng(1)
    rows = pd.DataFrame({"signal": rng.normal(size=4000), "noise": rng.normal(size=4000)})
    rows["label"] = (rows["signal"] + 0.3 * rng.normal(size=4000) > 1.5).astype(int)
    shares = permutation_importance(lambda f: f["signal"].to_numpy(), rows, ["signal", "noise"])
    assert shares["signal"] > 0.99 and shares["noise"] < 0.01
    assert abs(sum(shares.values()) - 1) < 1e-9
    ignored = permutation_importance(lambda f: np.zeros(len(f)), rows, ["signal", "noise"])
    assert ignored == {"signal": 0.5, "noise": 0.5}
