"""What monitoring judges by: where reports go, the drift and performance thresholds the asset
checks and the drift sensor share, and how often drift may retrain."""

import datetime as dt
from pathlib import Path

import dagster as dg

SEVERITIES = ("WARN", "ERROR")


class MonitoringResource(dg.ConfigurableResource):
    """`check_severity`: WARN shows a crossed threshold, ERROR also blocks what is downstream.
    The drift sensor retrains on a crossed threshold whichever the severity."""

    reports_dir: str
    drift_share_threshold: float = 0.3  # share of the model's inputs that drifted
    pr_auc_floor: float = 0.3
    min_frauds: int = 5  # fewer labelled frauds in a window: its PR-AUC is noise, not judged
    check_severity: str = "WARN"
    retrain_cooldown_hours: float = 24.0

    def reports(self, kind: str) -> Path:
        return Path(self.reports_dir) / kind

    def severity(self) -> dg.AssetCheckSeverity:
        if self.check_severity not in SEVERITIES:
            raise ValueError(f"check_severity {self.check_severity!r} is not one of {SEVERITIES}")
        return dg.AssetCheckSeverity(self.check_severity)

    @property
    def cooldown(self) -> dt.timedelta:
        return dt.timedelta(hours=self.retrain_cooldown_hours)
