"""Thresholds from costs, on rows small enough to work out by hand."""

import numpy as np
import pytest

from ml.thresholds import CostModel, choose_thresholds, thresholds_from_tags

pytestmark = pytest.mark.unit

# score, fraud, amount (USD)
ROWS = [(0.95, 1, 100.0), (0.9, 0, 1000.0), (0.8, 1, 50.0), (0.5, 0, 20.0), (0.1, 0, 10.0)]
SCORES, LABELS, AMOUNTS = (np.array(c) for c in zip(*ROWS, strict=True))


def test_the_cheapest_pair_within_the_review_budget():
    # Decline A, review B and C: no fraud lost, 2 reviews at 5, no good sale declined: 10 a day.
    # (Approving all loses 150; declining B costs 100 of its 1,000.)
    choice = choose_thresholds(LABELS, SCORES, AMOUNTS, days=1, costs=CostModel(5, 0.1, 10))
    assert (choice.review, choice.decline) == (0.8, 0.95)
    assert choice.cost_per_day == pytest.approx(10)
    assert (choice.reviews_per_day, choice.declines_per_day) == (2, 1)
    assert choice.fraud_amount_stopped == 1.0 and choice.cost_per_day_approving_all == 150


def test_a_tight_budget_trades_reviews_for_losses():
    # One review a day: declining A alone and letting C through (50) beats any one review.
    choice = choose_thresholds(LABELS, SCORES, AMOUNTS, days=1, costs=CostModel(5, 0.1, 1))
    assert choice.reviews_per_day <= 1
    assert choice.cost_per_day == pytest.approx(50)
    assert choice.decline == 0.95 and choice.fraud_amount_stopped == pytest.approx(100 / 150)


def test_costs_are_per_day_and_the_budget_too():
    # The same rows over two days: half the cost a day; two reviews are one a day.
    choice = choose_thresholds(LABELS, SCORES, AMOUNTS, days=2, costs=CostModel(5, 0.1, 1))
    assert (choice.review, choice.decline) == (0.8, 0.95)
    assert choice.cost_per_day == pytest.approx(5)


def test_the_thresholds_round_trip_through_version_tags():
    choice = choose_thresholds(LABELS, SCORES, AMOUNTS, days=1)
    assert thresholds_from_tags(choice.tags()) == (choice.review, choice.decline)
    assert thresholds_from_tags({"other": "1"}) is None


def test_serving_takes_the_version_s_thresholds_unless_the_environment_overrides(monkeypatch):
    from serving.scoring import decision_thresholds

    monkeypatch.delenv("FRAUD_REVIEW_THRESHOLD", raising=False)
    monkeypatch.delenv("FRAUD_DECLINE_THRESHOLD", raising=False)
    assert decision_thresholds(None) == decision_thresholds((0.5, 0.9))
    chosen = decision_thresholds((0.2, 0.7))
    assert (chosen.review, chosen.decline) == (0.2, 0.7)
    monkeypatch.setenv("FRAUD_DECLINE_THRESHOLD", "0.95")
    chosen = decision_thresholds((0.2, 0.7))
    assert (chosen.review, chosen.decline) == (0.2, 0.95)
