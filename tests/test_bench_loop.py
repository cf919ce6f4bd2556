"""bench/loop.py's judgement of a run's recorded days by a drift policy (it re-judges old runs)."""

import pytest

from bench.loop import judged
from monitoring.drift_policy import DriftPolicy

pytestmark = pytest.mark.unit
POLICY = DriftPolicy(
    weighted_drift_threshold=0.25, sustained_drift_threshold=0.15, sustained_days=2
)


def _run(scenario: str, weighted: list[float], first_index: int = -2, shares=None) -> dict:
    shares = shares or [0.05] * len(weighted)
    days = [
        {"index": first_index + i, "weighted_drift": w, "drift_share": share,
         "prediction_drift": 0.01, "missed_fraud_p_value": 1.0}
        for i, (w, share) in enumerate(zip(weighted, shares, strict=True))
    ]  # fmt: skip
    return {"scenario": scenario, "days": days}


def test_a_lasting_drift_alarms_on_its_second_day_and_a_lone_noisy_day_never():
    seen = judged(_run("amount_inflation", [0.16, 0.0, 0.16, 0.17, 0.3]), POLICY)
    assert seen["alarms"] == [False, False, False, True, True]
    assert seen["first_alarm_day"] == 2 and seen["baseline_alarms"] == 0
    baseline = judged(_run("baseline", [0.2, 0.0, 0.2, 0.1, 0.2]), POLICY)
    assert baseline["baseline_alarms"] == 0 and baseline["weighted_drift"] == 0.2
    assert judged(_run("baseline", [0.2, 0.2]), POLICY)["baseline_alarms"] == 1


def test_a_broad_drift_alarms_whatever_the_importance_of_its_inputs():
    seen = judged(_run("merchant_mix_shift", [0.06] * 4, shares=[0.07, 0.02, 0.34, 0.39]), POLICY)
    assert seen["alarms"] == [False, False, True, True] and seen["first_alarm_day"] == 1
    assert seen["drift_share"] == 0.07 and seen["baseline_alarms"] == 0
