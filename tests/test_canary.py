"""The canary's verdict on log rows of its rollout: it waits for enough rows and time, completes
when the canary is like the stable version, and rolls back a canary that fails, is slow or
scores differently; the shadow comparison's figures on pairs whose answers are known; and the
gate's reading of a shadow's labelled days."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ml.promotion import GatePolicy, shadow_reasons
from monitoring.canary import CanaryPolicy, judge_canary
from monitoring.shadow import compare, paired_scores

pytestmark = pytest.mark.unit
POLICY = CanaryPolicy(min_rows=300, min_minutes=10, min_rows_to_judge=100)


def _rows(canary_scores, stable_scores, canary_ms=1.0, stable_ms=1.0, failed=0) -> pa.Table:
    """Rollout log rows: the canary v2's answers, `failed` canary rows v1 answered, and v1's."""
    n_canary, n_stable = len(canary_scores), len(stable_scores)
    return pa.table({
        "route": ["canary"] * (n_canary + failed) + ["stable"] * n_stable,
        "model_version": ["2"] * n_canary + ["1"] * (failed + n_stable),
        "error": [None] * n_canary + ["canary v2 failed: boom"] * failed + [None] * n_stable,
        "model_ms": [canary_ms] * n_canary + [stable_ms] * (failed + n_stable),
        "score": [*canary_scores, *np.full(failed, 0.1), *stable_scores],
    })  # fmt: skip


def _scores(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).beta(0.5, 8, n)  # mostly low, a tail of high scores


def test_a_canary_like_the_stable_version_waits_for_rows_and_time_then_completes():
    healthy = _rows(_scores(400, 1), _scores(3600, 2))
    assert judge_canary(healthy, "2", minutes=3, policy=POLICY).action == "wait"
    few = _rows(_scores(150, 1), _scores(1350, 2))
    assert judge_canary(few, "2", minutes=30, policy=POLICY).action == "wait"
    verdict = judge_canary(healthy, "2", minutes=12, policy=POLICY)
    assert verdict.action == "complete", verdict.reason
    assert verdict.figures["canary_rows"] == 400 and verdict.figures["canary_error_rate"] == 0


def test_a_canary_that_calls_everything_fraud_is_rolled_back_on_its_scores():
    broken = _rows(np.full(120, 1.0), _scores(1000, 2))
    verdict = judge_canary(broken, "2", minutes=1, policy=POLICY)  # before min rows and time
    assert verdict.action == "rollback" and "Kolmogorov-Smirnov 1.00" in verdict.reason


def test_a_canary_the_stable_version_had_to_answer_for_is_rolled_back_on_its_error_rate():
    verdict = judge_canary(_rows(_scores(97, 1), _scores(900, 2), failed=3), "2", 30, POLICY)
    assert verdict.action == "rollback" and "error rate 3.0%" in verdict.reason
    fine = judge_canary(_rows(_scores(400, 1), _scores(3600, 2), failed=2), "2", 30, POLICY)
    assert fine.action == "complete"  # 2 of 402: under 1%


def test_a_slow_canary_is_rolled_back_and_a_fast_model_is_not_judged_on_noise():
    slow = judge_canary(_rows(_scores(400, 1), _scores(900, 2), 30.0, 8.0), "2", 30, POLICY)
    assert slow.action == "rollback" and "p99 model time 30.0 ms > 16.0 ms" in slow.reason
    quick = judge_canary(_rows(_scores(400, 1), _scores(900, 2), 4.0, 0.5), "2", 30, POLICY)
    assert quick.action == "complete"  # 8x as slow, but under the 5 ms slack


def test_the_shadow_comparison_pairs_by_transaction_and_counts_what_agreed():
    log = pa.Table.from_pylist([
        {"transaction_id": t, "path": path, "model_version": v, "score": s, "decision": d,
         "model_ms": ms}
        for t, path, v, s, d, ms in [
            ("a", "online", "1", 0.10, "approve", 1.0), ("a", "shadow", "2", 0.20, "approve", 2.0),
            ("b", "online", "1", 0.60, "review", 1.0), ("b", "shadow", "2", 0.95, "decline", 2.0),
            ("c", "stream", "1", 0.05, "approve", 1.0), ("c", "shadow", "2", 0.01, "approve", 2.0),
            ("d", "online", "1", 0.92, "decline", 1.0), ("d", "shadow", "2", 0.70, "review", 2.0),
            ("e", "online", "1", 0.30, "approve", 1.0),  # no shadow score: not a pair
        ]
    ])  # fmt: skip
    [found] = compare(paired_scores(log))
    assert (found.decided_version, found.shadow_version, found.pairs) == ("1", "2", 4)
    assert found.decision_agreement == 0.5  # a and c
    assert found.flagged_decided == 0.5 and found.flagged_shadow == 0.5
    decided, shadow = [0.10, 0.60, 0.05, 0.92], [0.20, 0.95, 0.01, 0.70]
    assert found.score_pearson == pytest.approx(np.corrcoef(decided, shadow)[0, 1])
    assert found.score_spearman == pytest.approx(0.8)  # ranks 2,3,1,4 against 2,4,1,3
    assert found.mean_abs_score_difference == pytest.approx((0.1 + 0.35 + 0.04 + 0.22) / 4)
    assert found.labelled is None


def test_with_matured_labels_both_models_are_measured_on_the_same_transactions():
    rng = np.random.default_rng(5)
    n = 2000
    label = (rng.random(n) < 0.05).astype(int)
    good = np.clip(label * 0.6 + rng.random(n) * 0.5, 0, 1)  # ranks frauds high
    noise = rng.random(n)  # ranks at random
    paired = pd.DataFrame({
        "transaction_id": [f"t{i}" for i in range(n)], "version": "1", "shadow_version": "2",
        "score": noise, "shadow_score": good, "decision": "approve", "shadow_decision": "approve",
        "model_ms": 1.0, "shadow_model_ms": 1.0,
    })  # fmt: skip
    labels = pd.DataFrame({"transaction_id": paired["transaction_id"], "label": label,
                           "card_id": [f"c{i % 500}" for i in range(n)]})  # fmt: skip
    [found] = compare(paired, labels)
    pr_auc = found.labelled["pr_auc"]
    assert found.labelled["frauds"] == label.sum()
    assert pr_auc["challenger"] > 0.9 > 0.2 > pr_auc["champion"] and pr_auc["low"] > 0


def _day(frauds: int, pr_auc: tuple[float, float, float], recall=(0.0, -0.01, 0.01)) -> dict:
    """Labelled shadow figures: (difference, low, high) of challenger − champion per metric."""

    def paired(d, low, high):
        return {"champion": 0.5, "challenger": 0.5 + d, "difference": d, "low": low, "high": high}

    return {"frauds": frauds, "rows": 10_000, "pr_auc": paired(*pr_auc),
            "recall_at_1pct_fpr": paired(*recall)}  # fmt: skip


def test_the_gate_refuses_a_challenger_shown_worse_on_its_shadow_days_and_not_on_too_few():
    policy = GatePolicy()  # PR-AUC tolerance 0.1, 30 frauds
    worse = _day(120, (-0.25, -0.31, -0.18))
    fine = _day(120, (0.01, -0.03, 0.05))
    few = _day(12, (-0.4, -0.6, -0.2))
    reasons, table = shadow_reasons([("2026-12-02", worse), ("2026-12-03", fine)], policy)
    assert len(reasons) == 1 and reasons[0].startswith("in shadow on 2026-12-02: PR-AUC")
    assert "2026-12-03" in table and "not worse" in table
    reasons, table = shadow_reasons([("2026-12-04", few), ("2026-12-05", fine)], policy)
    assert reasons == [] and "not judged: too few frauds" in table


def test_the_gate_reads_the_shadow_days_of_this_challenger_beside_this_champion_newest_first():
    import types

    import dagster as dg

    from assets import keys
    from assets.registry import _shadow_days

    instance = dg.DagsterInstance.ephemeral()
    for day, shadow, decided, frauds in [
        ("2026-12-01", "5", "4", 40), ("2026-12-02", "5", "4", 50), ("2026-12-02", "5", "4", 60),
        ("2026-12-03", "5", "3", 70), ("2026-12-04", "6", "4", 80), ("2026-12-05", "5", "4", 0),
    ]:  # fmt: skip
        labelled = _day(frauds, (0.0, -0.01, 0.01)) if frauds else {}
        instance.report_runless_asset_event(dg.AssetMaterialization(
            keys.SHADOW_COMPARISON, partition=day,
            metadata={"shadow_version": shadow, "decided_version": decided,
                      "labelled_figures": dg.MetadataValue.json(labelled)},
        ))  # fmt: skip
    champion = types.SimpleNamespace(version="4")
    days = _shadow_days(instance, "5", champion)
    # 12-03 beside another champion, 12-04 another challenger, 12-05 without labels; 12-02's
    # newer comparison wins
    assert [(day, figures["frauds"]) for day, figures in days] == [
        ("2026-12-02", 60), ("2026-12-01", 40),
    ]  # fmt: skip
    assert _shadow_days(instance, "5", None) == []  # no champion: nothing to compare with
