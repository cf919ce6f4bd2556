"""ml/comparison.py: weighted metrics as sklearn defines them, the paired cluster bootstrap and
the promotion verdict it leads to."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import average_precision_score

from ml.comparison import (
    PairedMetric,
    average_precision,
    decide,
    paired_bootstrap,
    recall_at_fpr,
)

pytestmark = pytest.mark.unit
TOLERANCES = {"pr_auc": 0.02, "recall_at_1pct_fpr": 0.05}


@st.composite
def scored_rows(draw, min_size: int, max_size: int, weighted: bool, ties: bool = True):
    """Labels with both classes, scores (with many ties, or none) and weights (some 0)."""
    n = draw(st.integers(min_size, max_size))
    labels = draw(arrays(np.int64, n, elements=st.integers(0, 1)))
    assume(0 < labels.sum() < n)
    values = st.integers(0, 12).map(float) if ties else st.floats(0, 1)
    scores = draw(arrays(np.float64, n, elements=values, unique=not ties))
    if not weighted:
        return labels, scores, None
    weights = draw(arrays(np.float64, n, elements=st.sampled_from([0.0, 0.3, 1.0, 2.5, 7.0])))
    assume(weights[labels == 1].sum() > 0 and weights[labels == 0].sum() > 0)
    return labels, scores, weights


@settings(max_examples=300, deadline=None)
@given(scored_rows(2, 60, weighted=True))
def test_weighted_pr_auc_is_sklearns_average_precision(rows):
    labels, scores, weights = rows
    expected = average_precision_score(labels, scores, sample_weight=weights)
    assert average_precision(labels, scores, weights) == pytest.approx(expected, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(scored_rows(100, 300, weighted=True))
def test_weighted_recall_at_1pct_fpr_follows_its_definition(rows):
    labels, scores, weights = rows
    best = 0.0
    for threshold in np.unique(scores):
        flagged = scores >= threshold
        fpr = weights[flagged & (labels == 0)].sum() / weights[labels == 0].sum()
        if fpr <= 0.01:
            best = max(best, weights[flagged & (labels == 1)].sum() / weights[labels == 1].sum())
    assert recall_at_fpr(labels, scores, weights) == pytest.approx(best, abs=1e-12)


def test_an_early_report_takes_the_unreported_frauds_it_stands_for_off_the_legitimate_rows():
    # Frauds at 0.9 (not reported yet) and 0.8 (reported; half its age's frauds are): ranked
    # perfectly. Counted as legitimate, the unreported one would halve precision at 0.8.
    scores = np.array([0.9, 0.8, 0.5, 0.4, 0.3])
    assert average_precision([0, 2, 0, 0, 0], scores) == pytest.approx(1.0)
    assert average_precision([0, 1, 0, 0, 0], scores, [1, 2, 1, 1, 1]) == pytest.approx(2 / 3)
    assert recall_at_fpr([0, 2, 0, 0, 0], scores) == 1.0
    with pytest.raises(ValueError, match="not negative"):
        average_precision([0, -1, 1, 0, 0], scores)


def test_metrics_on_early_reports_estimate_the_metrics_on_every_fraud():
    # Reports arrive independently of the score: a fraud of each row's age is reported with
    # probability `share`, and a report stands for 1 / share frauds.
    rng = np.random.default_rng(3)
    labels, champion, challenger = _dataset(20_000, 0.02, seed=3, noise=(0.4, 0.3))
    truth = np.array([average_precision(labels, s) for s in (champion, challenger)])
    share = rng.choice([0.15, 0.3, 0.6], len(labels))
    corrected, naive = [], []
    for _ in range(30):
        reported = labels * (rng.random(len(labels)) < share)
        corrected.append([average_precision(reported / share, s) for s in (champion, challenger)])
        weights = np.where(reported == 1, 1 / share, 1.0)
        naive.append([average_precision(reported, s, weights) for s in (champion, challenger)])
    corrected, naive = np.array(corrected), np.array(naive)
    # A ratio of estimates: a little low, and the difference of two models nearly unbiased.
    assert np.all(np.abs(corrected.mean(axis=0) - truth) < 0.05)
    assert np.diff(corrected, axis=1).mean() == pytest.approx(np.diff(truth)[0], abs=0.03)
    assert np.all(naive.mean(axis=0) < truth - 0.15)  # unreported frauds counted legitimate


def _dataset(n: int, fraud_rate: float, seed: int, noise=(1.0, 1.0)):
    """Labels and two models' scores: the label plus Gaussian noise of each model's scale."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < fraud_rate).astype(int)
    champion, challenger = (labels + rng.normal(0, scale, n) for scale in noise)
    return labels, champion, challenger


def test_identical_models_differ_by_exactly_zero():
    labels, scores, _ = _dataset(3000, 0.03, seed=0)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, len(labels))
    cards = np.arange(len(labels)) // 3
    result = paired_bootstrap(labels, scores, scores.copy(), weights, cards, resamples=300)
    for paired in result.values():
        assert paired.champion == paired.challenger
        assert (paired.difference, paired.low, paired.high) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("noise", "promote", "status"),
    [((1.5, 0.5), True, "better"), ((0.5, 1.5), False, "worse")],
)
def test_a_clearly_better_challenger_is_promoted_a_clearly_worse_one_is_not(noise, promote, status):
    labels, champion, challenger = _dataset(5000, 0.02, seed=3, noise=noise)
    intervals = paired_bootstrap(labels, champion, challenger, resamples=500)
    verdict = decide(intervals, TOLERANCES, int(labels.sum()), min_frauds=30)
    assert (verdict.promote, verdict.status) == (promote, status)
    if promote:
        assert verdict.reasons == []
    else:
        assert {reason.split(" ")[0] for reason in verdict.reasons} == {"PR-AUC", "recall"}


def test_within_the_tolerance_is_not_worse_and_reasons_say_why_not():
    within = PairedMetric(0.50, 0.49, -0.01, -0.015, 0.004)
    below = PairedMetric(0.50, 0.459, -0.041, -0.083, -0.002)
    verdict = decide({"pr_auc": within, "recall_at_1pct_fpr": within}, TOLERANCES, 40, 30)
    assert (verdict.promote, verdict.status) == (True, "not worse")
    verdict = decide({"pr_auc": below, "recall_at_1pct_fpr": within}, TOLERANCES, 40, 30)
    assert (verdict.promote, verdict.status) == (False, "worse")
    assert verdict.reasons == ["PR-AUC −0.041 [−0.083, −0.002] below −0.02"]


def test_an_interval_too_wide_to_show_non_inferiority_keeps_the_champion_as_inconclusive():
    wide = PairedMetric(0.50, 0.51, 0.01, -0.06, 0.08)
    verdict = decide({"pr_auc": wide, "recall_at_1pct_fpr": wide}, TOLERANCES, 40, 30)
    assert (verdict.promote, verdict.status) == (False, "inconclusive")
    # With no champion serving, the first model only has to not be worse than the baseline.
    first = decide({"pr_auc": wide, "recall_at_1pct_fpr": wide}, TOLERANCES, 40, 30, False)
    assert (first.promote, first.status) == (True, "not shown worse")
    below = PairedMetric(0.50, 0.459, -0.041, -0.083, -0.002)
    refused = decide({"pr_auc": below, "recall_at_1pct_fpr": wide}, TOLERANCES, 40, 30, False)
    assert (refused.promote, refused.status) == (False, "worse")
    assert refused.reasons == ["PR-AUC −0.041 [−0.083, −0.002] below 0"]


def test_too_few_frauds_is_not_enough_evidence_whatever_the_intervals():
    labels, champion, challenger = _dataset(400, 0.03, seed=4, noise=(1.5, 0.2))
    frauds = int(labels.sum())
    assert frauds < 30
    verdict = decide(paired_bootstrap(labels, champion, challenger), TOLERANCES, frauds, 30)
    assert (verdict.promote, verdict.status) == (False, "not enough evidence")
    assert verdict.reasons == [f"{frauds} frauds in the comparison window < 30 needed"]


def test_a_window_without_frauds_has_no_interval_and_no_verdict():
    labels, champion, challenger = _dataset(300, 0.0, seed=8)
    intervals = paired_bootstrap(labels, champion, challenger, resamples=50)
    assert all(np.isnan([p.champion, p.low, p.high]).all() for p in intervals.values())
    assert decide(intervals, TOLERANCES, 0, 30).status == "not enough evidence"


def test_the_interval_covers_the_population_difference():
    population = _dataset(400_000, 0.05, seed=5, noise=(1.0, 0.8))
    truth = {
        "pr_auc": average_precision(population[0], population[2])
        - average_precision(population[0], population[1]),
        "recall_at_1pct_fpr": recall_at_fpr(population[0], population[2])
        - recall_at_fpr(population[0], population[1]),
    }
    rng = np.random.default_rng(6)
    below, above = ({metric: 0 for metric in truth} for _ in range(2))
    for seed in range(100):
        rows = rng.choice(len(population[0]), 2000, replace=False)
        sample = [part[rows] for part in population]
        intervals = paired_bootstrap(*sample, resamples=400, seed=seed)
        for metric, paired in intervals.items():
            below[metric] += paired.low <= truth[metric]
            above[metric] += truth[metric] <= paired.high
    # Each bound is one-sided at 95%: about 95 of 100 samples on the right side of each.
    assert all(hits >= 90 for hits in [*below.values(), *above.values()]), (below, above)


def test_clusters_of_duplicated_rows_widen_the_interval():
    labels, champion, challenger = _dataset(1000, 0.05, seed=7, noise=(1.0, 0.8))
    copies = 5
    duplicated = [np.repeat(part, copies) for part in (labels, champion, challenger)]
    cards = np.repeat(np.arange(len(labels)), copies)
    by_row = paired_bootstrap(*duplicated, resamples=500)
    by_card = paired_bootstrap(*duplicated, clusters=cards, resamples=500)
    for metric in by_row:
        row_width = by_row[metric].high - by_row[metric].low
        card_width = by_card[metric].high - by_card[metric].low
        # Five copies move together: up to √5 (2.2) times wider than as independent rows.
        assert card_width > 1.4 * row_width, (metric, row_width, card_width)
