"""Alerts to the team's webhook: a failed run (run-failure sensor); a failed blocking check, a
refused promotion, a drift alarm, a promotion, and a canary rollout's completion or rollback (a
sensor on the event log, from the newest event when it first runs). One message per event,
with a link to its run: a run that failed only because its blocking checks failed is told
once, by its checks. An event whose message could not be sent is tried again at the next tick,
and none after it is sent first."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from assets import keys
from assets.registry import GATE_CHECK
from monitoring.alerts import Alert
from resources.alerts import AlertWebhookResource

FETCH = 100  # events of each kind read per tick


@dg.run_failure_sensor(
    name="run_failure_alerts",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts each failed run, with its error, to FRAUD_ALERT_WEBHOOK_URL.",
)
def run_failure_alerts(context: dg.RunFailureSensorContext, alerts: AlertWebhookResource):
    if not alerts.enabled:
        return dg.SkipReason("FRAUD_ALERT_WEBHOOK_URL is not set: alerts are off")
    run = context.dagster_run
    step_failures = context.get_step_failure_events()
    if step_failures and all(_failed_checks_only(e) for e in step_failures):
        return dg.SkipReason(f"run {run.run_id}: its failed checks are told by event_alerts")
    error = context.failure_event.message or "failed"
    failed_steps = sorted({e.step_key for e in step_failures if e.step_key})
    detail = f"Failed step(s): {', '.join(failed_steps)}. {error}" if failed_steps else error
    alerts.send(Alert("run_failed", f"Run of {run.job_name} failed", detail[:2000],
                      alerts.run_link(run.run_id)))  # fmt: skip
    return None


def _failed_checks_only(step_failure: dg.DagsterEvent) -> bool:
    """A step that failed because its blocking checks failed (and for nothing else)."""
    error = step_failure.step_failure_data.error
    return error is not None and error.cls_name == "DagsterAssetCheckFailedError"


@dataclass(frozen=True)
class _Event:
    storage_id: int
    run_id: str
    alert: Alert | None  # None: nothing to tell


def _check_alert(record, link) -> Alert | None:
    evaluation = record.event_log_entry.dagster_event.event_specific_data
    failed = not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    if not failed or evaluation.blocking is False:
        return None
    asset = evaluation.asset_key.to_user_string()
    detail = (evaluation.description or "no description")[:2000]
    if evaluation.asset_key == keys.CHAMPION and evaluation.check_name == GATE_CHECK:
        challenger = evaluation.metadata.get("challenger_version")
        version = f"v{challenger.value}" if challenger else "the challenger"
        return Alert("promotion_refused", f"Promotion of {version} refused by its gate", detail,
                     link)  # fmt: skip
    return Alert("check_failed", f"Blocking check {asset}/{evaluation.check_name} failed",
                 f"{detail} Downstream assets did not run.", link)  # fmt: skip


def _materialization_alert(key: dg.AssetKey, record, link) -> Alert | None:
    materialization = record.asset_materialization
    meta = {name: value.value for name, value in materialization.metadata.items()}
    if key == keys.DRIFT_REPORT and meta.get("alarm"):
        reasons = "; ".join(meta.get("alarm_reasons") or []) or "drift alarm"
        return Alert("drift_alarm", f"Drift alarm on {materialization.partition}", reasons, link)
    if key != keys.CHAMPION:
        return None
    if meta.get("promoted"):
        rollout = meta.get("rollout", "full traffic")
        detail = (f"Previous champion: v{meta.get('previous_version')}; approval: "
                  f"{meta.get('approval', 'auto')}; rollout: {rollout}.")  # fmt: skip
        title = f"v{meta.get('champion_version')} promoted to champion"
        return Alert("promoted", title, detail, link)
    if meta.get("rolled_back"):
        title = (f"v{meta.get('rolled_back_version')} rolled back: v{meta.get('champion_version')}"
                 " is champion again")  # fmt: skip
        return Alert("rolled_back", title, str(meta.get("rollout_reason")), link)
    if meta.get("rollout") == "complete":
        title = f"v{meta.get('champion_version')} completed its canary rollout: all traffic"
        return Alert("rollout_completed", title, str(meta.get("rollout_reason")), link)
    return None


def _events(instance: dg.DagsterInstance, after: int, alerts: AlertWebhookResource):
    """The events after storage id `after`, oldest first, and how far they are complete (a
    kind that filled its page may have more events beyond it)."""
    events, complete_to = [], None
    checks = instance.get_event_records(
        dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION, after_cursor=after),
        limit=FETCH,
        ascending=True,
    )
    pages = [checks]
    for record in checks:
        link = alerts.run_link(record.run_id)
        events.append(_Event(record.storage_id, record.run_id, _check_alert(record, link)))
    for key in (keys.DRIFT_REPORT, keys.CHAMPION):
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(key, after_storage_id=after), limit=FETCH, ascending=True
        ).records
        pages.append(page)
        for record in page:
            alert = _materialization_alert(key, record, alerts.run_link(record.run_id))
            events.append(_Event(record.storage_id, record.run_id, alert))
    for page in pages:
        if len(page) == FETCH:
            last = page[-1].storage_id
            complete_to = last if complete_to is None else min(complete_to, last)
    ordered = sorted(events, key=lambda e: e.storage_id)
    return [e for e in ordered if complete_to is None or e.storage_id <= complete_to]


@dg.sensor(
    name="event_alerts",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts failed blocking checks, refused promotions, drift alarms, promotions, "
    "rollbacks and completed rollouts to FRAUD_ALERT_WEBHOOK_URL, once each, with a link to "
    "the run.",
)
def event_alerts(context: dg.SensorEvaluationContext, alerts: AlertWebhookResource):
    newest = context.instance.event_log_storage.get_maximum_record_id() or 0
    if context.cursor is None or not alerts.enabled:  # from now on: no flood of old events
        reason = "alerts are off (FRAUD_ALERT_WEBHOOK_URL is not set)" if not alerts.enabled else (
            "watching events from now on")  # fmt: skip
        return dg.SensorResult(skip_reason=reason, cursor=str(newest))
    cursor, sent = int(context.cursor), 0
    for event in _events(context.instance, cursor, alerts):
        if event.alert is not None:
            try:
                alerts.send(event.alert)
            except OSError as error:  # the webhook is down: this event first, next tick
                context.log.warning(f"alert not sent, retrying next tick: {error}")
                break
            sent += 1
        cursor = event.storage_id
    return dg.SensorResult(skip_reason=None if sent else "nothing to tell", cursor=str(cursor))
