"""Drift -> retrain: the train job when a drift report or the champion's measured performance
crosses its threshold, once per triggering materialization and at most once per cooldown."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import dagster as dg

from assets.keys import DRIFT_REPORT, MODEL_PERFORMANCE
from jobs import training_job
from resources.monitoring import MonitoringResource

WATCHED = (DRIFT_REPORT, MODEL_PERFORMANCE)


@dataclass(frozen=True)
class Finding:
    """One materialization of a watched asset, as the decision needs it."""

    storage_id: int
    asset: str
    partition: str | None
    metadata: dict


@dataclass(frozen=True)
class RetrainPolicy:
    """A drift report's own verdict decides on drift (`monitoring.drift_policy`); these decide on
    measured performance and on how often to retrain."""

    pr_auc_floor: float
    min_frauds: int
    cooldown: dt.timedelta

    @classmethod
    def of(cls, monitoring: MonitoringResource) -> RetrainPolicy:
        return cls(monitoring.pr_auc_floor, monitoring.min_frauds, monitoring.cooldown)


@dataclass
class RetrainCursor:
    """The newest storage id seen per watched asset, and when drift last retrained: kept as the
    sensor's cursor in the Dagster instance, so a restarted daemon goes on where it was."""

    seen: dict[str, int] = field(default_factory=dict)
    last_trigger: dt.datetime | None = None

    @classmethod
    def parse(cls, text: str | None) -> RetrainCursor:
        if not text:
            return cls()
        data = json.loads(text)
        last = data.get("last_trigger")
        return cls(dict(data.get("seen", {})), dt.datetime.fromisoformat(last) if last else None)

    def dump(self) -> str:
        last = self.last_trigger.isoformat() if self.last_trigger else None
        return json.dumps({"seen": self.seen, "last_trigger": last}, sort_keys=True)


@dataclass(frozen=True)
class Trigger:
    reason: str
    finding: Finding

    @property
    def run_key(self) -> str:
        """One run per triggering materialization, whoever asks for it again."""
        return f"{self.finding.asset}:{self.finding.partition}:{self.finding.storage_id}"

    @property
    def tags(self) -> dict[str, str]:
        return {
            "fraud/trigger": self.finding.asset,
            "fraud/trigger_partition": self.finding.partition or "none",
            "fraud/trigger_reason": self.reason,
        }


@dataclass(frozen=True)
class Decision:
    triggers: list[Trigger]
    skipped: list[str]  # crossings that did not retrain, and why
    cursor: RetrainCursor


def crossing(finding: Finding, policy: RetrainPolicy) -> str | None:
    """Why `finding` calls for retraining, or None: a drift report's alarm, with its reasons, or
    a measured PR-AUC under the floor. A report without a verdict (an empty window) or a window
    with too few frauds to judge is not a reason."""
    meta, day = finding.metadata, finding.partition
    if finding.asset == DRIFT_REPORT.to_user_string():
        if meta.get("alarm"):
            return f"{'; '.join(meta.get('alarm_reasons', [])) or 'drift alarm'} on {day}"
    elif finding.asset == MODEL_PERFORMANCE.to_user_string():
        pr_auc, frauds = meta.get("pr_auc"), meta.get("frauds", 0)
        if pr_auc is not None and frauds >= policy.min_frauds and pr_auc < policy.pr_auc_floor:
            return f"PR-AUC {pr_auc:.3f} < {policy.pr_auc_floor} on {day} ({frauds} frauds)"
    return None


def decide(
    findings: list[Finding], cursor: RetrainCursor, now: dt.datetime, policy: RetrainPolicy
) -> Decision:
    """Which findings retrain: each crossing one run (keyed by its materialization, so a
    finding evaluated twice asks once), unless drift retrained less than a cooldown ago."""
    seen = dict(cursor.seen)
    last = cursor.last_trigger
    triggers, skipped = [], []
    for finding in sorted(findings, key=lambda f: f.storage_id):
        if finding.storage_id <= seen.get(finding.asset, -1):
            continue  # already decided on
        seen[finding.asset] = finding.storage_id
        reason = crossing(finding, policy)
        if reason is None:
            continue
        if last is not None and now - last < policy.cooldown:
            skipped.append(f"{reason}: in cooldown until {(last + policy.cooldown):%Y-%m-%d %H:%M}")
            continue
        triggers.append(Trigger(reason, finding))
        last = now
    return Decision(triggers, skipped, RetrainCursor(seen, last))


def _findings(instance: dg.DagsterInstance, cursor: RetrainCursor) -> list[Finding]:
    found = []
    for key in WATCHED:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(key, after_storage_id=cursor.seen.get(key.to_user_string())),
            limit=500,
            ascending=True,
        ).records
        for record in records:
            materialization = record.asset_materialization
            found.append(
                Finding(
                    storage_id=record.storage_id,
                    asset=key.to_user_string(),
                    partition=materialization.partition,
                    metadata={k: v.value for k, v in materialization.metadata.items()},
                )
            )
    return found


@dg.sensor(
    job=training_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Retrains when a drift report raises its alarm (importance-weighted input drift, "
    "prediction drift or missed frauds so far) or the champion's PR-AUC falls under the floor; "
    "once per report, at most once per cooldown.",
)
def drift_retrain_sensor(context: dg.SensorEvaluationContext, monitoring: MonitoringResource):
    cursor = RetrainCursor.parse(context.cursor)
    decision = decide(
        _findings(context.instance, cursor),
        cursor,
        dt.datetime.now(dt.UTC),
        RetrainPolicy.of(monitoring),
    )
    for note in decision.skipped:
        context.log.info(f"not retraining: {note}")
    requests = [dg.RunRequest(run_key=t.run_key, tags=t.tags) for t in decision.triggers]
    if requests:
        return dg.SensorResult(run_requests=requests, cursor=decision.cursor.dump())
    return dg.SensorResult(
        skip_reason="; ".join(decision.skipped) or "no report crossed a threshold",
        cursor=decision.cursor.dump(),
    )
