"""What monitoring judges by: where reports go, the drift policy the drift report's check and the
drift sensor share, the performance floor, and how often drift may retrain."""

import datetime as dt
from pathlib import Path
from typing import Literal

import dagster as dg

from monitoring.canary import CanaryPolicy
from monitoring.drift_policy import DriftPolicy


class MonitoringResource(dg.ConfigurableResource):
    """The drift alarm (`monitoring.drift_policy`): a day raises it when the importance-weighted
    share of drifted inputs reaches `weighted_drift_threshold` (or `sustained_drift_threshold` on
    `sustained_days` reported days running), the share of drifted inputs, importance aside,
    reaches `drift_share_threshold`, the drift score of the champion's scores reaches
    `prediction_drift_threshold`, or the cards with a fraud reported so far in the last
    `label_window_days` hold more the champion missed than its reference window makes likely
    (Fisher's exact test, p < `missed_fraud_alpha`; reports with a reason code in
    `first_party_reason_codes`, disputes of the cardholder's own purchases, left out).
    `check_severity`: WARN shows an alarm or a crossed floor, ERROR also blocks what is
    downstream; the drift sensor retrains on an alarm whichever the severity."""

    reports_dir: str
    weighted_drift_threshold: float = DriftPolicy.weighted_drift_threshold
    sustained_drift_threshold: float = DriftPolicy.sustained_drift_threshold
    sustained_days: int = DriftPolicy.sustained_days
    drift_share_threshold: float = DriftPolicy.drift_share_threshold
    prediction_drift_threshold: float = DriftPolicy.prediction_drift_threshold
    missed_fraud_alpha: float = DriftPolicy.missed_fraud_alpha
    label_window_days: int = DriftPolicy.label_window_days
    review_threshold: float = DriftPolicy.review_threshold  # a score under it is let through
    # pydantic copies field defaults, so the list is not shared
    first_party_reason_codes: list[str] = list(DriftPolicy.first_party_reason_codes)  # noqa: RUF012
    pr_auc_floor: float = 0.3
    min_frauds: int = 5  # fewer labelled frauds in a window: its PR-AUC is noise, not judged
    check_severity: Literal["WARN", "ERROR"] = "WARN"
    retrain_cooldown_hours: float = 24.0
    # A canary rollout (`monitoring.canary`): what completes it, what rolls it back.
    canary_min_rows: int = CanaryPolicy.min_rows
    canary_min_minutes: float = CanaryPolicy.min_minutes
    canary_max_error_rate: float = CanaryPolicy.max_error_rate
    canary_max_latency_ratio: float = CanaryPolicy.max_latency_ratio
    canary_max_score_shift: float = CanaryPolicy.max_score_shift

    def reports(self, kind: str) -> Path:
        return Path(self.reports_dir) / kind

    def severity(self) -> dg.AssetCheckSeverity:
        return dg.AssetCheckSeverity(self.check_severity)

    def drift_policy(self) -> DriftPolicy:
        return DriftPolicy(
            weighted_drift_threshold=self.weighted_drift_threshold,
            sustained_drift_threshold=self.sustained_drift_threshold,
            sustained_days=self.sustained_days,
            drift_share_threshold=self.drift_share_threshold,
            prediction_drift_threshold=self.prediction_drift_threshold,
            missed_fraud_alpha=self.missed_fraud_alpha,
            label_window_days=self.label_window_days,
            review_threshold=self.review_threshold,
            first_party_reason_codes=tuple(self.first_party_reason_codes),
        )

    def canary_policy(self) -> CanaryPolicy:
        return CanaryPolicy(
            min_rows=self.canary_min_rows,
            min_minutes=self.canary_min_minutes,
            max_error_rate=self.canary_max_error_rate,
            max_latency_ratio=self.canary_max_latency_ratio,
            max_score_shift=self.canary_max_score_shift,
        )

    @property
    def cooldown(self) -> dt.timedelta:
        return dt.timedelta(hours=self.retrain_cooldown_hours)
