"""What monitoring judges by: where reports go, the drift and performance thresholds the asset
checks and the drift sensor share, and how often drift may retrain."""

import datetime as dt
from pathlib import Path
from typing import Literal

import dagster as dg


class MonitoringResource(dg.ConfigurableResource):
    """`check_severity`: WARN shows a crossed threshold, ERROR also blocks what is downstream.
    The drift sensor retrains on a crossed threshold whichever the severity."""

    reports_dir: str
    drift_share_threshold: float = 0.45  # share of the model's inputs that drifted
    pr_auc_floor: float = 0.3
    min_frauds: int = 5  # fewer labelled frauds in a window: its PR-AUC is noise, not judged
    check_severity: Literal["WARN", "ERROR"] = "WARN"
    retrain_cooldown_hours: float = 24.0
    # A retrain that drift called for is gated with these tolerances: the champion's edge is
    # measured on labels from before the drift (the newest are not final yet), so a model
    # trained on fresher data may be promoted unless it is worse by more than this.
    retrain_pr_auc_tolerance: float = 0.02
    retrain_recall_tolerance: float = 0.05

    def reports(self, kind: str) -> Path:
        return Path(self.reports_dir) / kind

    def severity(self) -> dg.AssetCheckSeverity:
        return dg.AssetCheckSeverity(self.check_severity)

    def retrain_gate(self) -> dict:
        """The promotion gate's config for a retrain that drift called for."""
        return {
            "pr_auc_margin": -self.retrain_pr_auc_tolerance,
            "recall_tolerance": self.retrain_recall_tolerance,
        }

    @property
    def cooldown(self) -> dt.timedelta:
        return dt.timedelta(hours=self.retrain_cooldown_hours)
