"""The drift -> retrain sensor: its decision (a report's alarm, cooldown, one run per report) as a
pure function, then the sensor itself against a real Dagster instance."""

import datetime as dt

import dagster as dg
import pytest

from assets.keys import DRIFT_REPORT, MODEL_PERFORMANCE
from resources.monitoring import MonitoringResource
from sensors.drift import Finding, RetrainCursor, RetrainPolicy, decide, drift_retrain_sensor

pytestmark = pytest.mark.unit
POLICY = RetrainPolicy(pr_auc_floor=0.4, min_frauds=5, cooldown=dt.timedelta(hours=24))
NOW = dt.datetime(2026, 11, 30, 6, tzinfo=dt.UTC)
DRIFT, PERFORMANCE = DRIFT_REPORT.to_user_string(), MODEL_PERFORMANCE.to_user_string()


def _verdict(alarm: bool | None) -> dict:
    if alarm is None:
        return {}
    reasons = ["importance-weighted input drift 0.41 >= 0.25"] if alarm else []
    return {"alarm": alarm, "alarm_reasons": reasons}


def drift(storage_id: int, alarm: bool | None, day: str = "2026-11-29") -> Finding:
    return Finding(storage_id, DRIFT, day, _verdict(alarm))


def test_a_report_without_an_alarm_does_not_retrain_and_one_with_it_does_saying_why():
    quiet = decide([drift(1, False)], RetrainCursor(), NOW, POLICY)
    assert quiet.triggers == [] and quiet.cursor.seen == {DRIFT: 1}
    alarmed = decide([drift(2, True)], quiet.cursor, NOW, POLICY)
    [trigger] = alarmed.triggers
    assert trigger.run_key == f"{DRIFT}:2026-11-29:2"
    assert trigger.tags["fraud/trigger"] == DRIFT
    assert trigger.tags["fraud/trigger_reason"] == (
        "importance-weighted input drift 0.41 >= 0.25 on 2026-11-29"
    )
    assert alarmed.cursor.last_trigger == NOW


def test_a_report_decided_on_is_not_decided_on_again():
    first = decide([drift(5, True)], RetrainCursor(), NOW, POLICY)
    assert len(first.triggers) == 1
    # The same materialization again (a cursor saved before the run was submitted, say): the
    # cursor skips it, and were it lost, the same run_key would ask Dagster for the same run.
    again = decide([drift(5, True)], first.cursor, NOW + dt.timedelta(days=3), POLICY)
    assert again.triggers == [] and again.skipped == []
    lost = decide([drift(5, True)], RetrainCursor(), NOW + dt.timedelta(days=3), POLICY)
    assert lost.triggers[0].run_key == first.triggers[0].run_key


def test_crossings_within_the_cooldown_are_skipped_with_the_reason_and_later_ones_retrain():
    week = [drift(i, True, f"2026-11-{20 + i}") for i in range(1, 4)]
    decision = decide(week, RetrainCursor(), NOW, POLICY)
    assert [t.finding.storage_id for t in decision.triggers] == [1]
    assert (
        len(decision.skipped) == 2 and "in cooldown until 2026-12-01 06:00" in decision.skipped[0]
    )
    later = decide([drift(9, True)], decision.cursor, NOW + dt.timedelta(hours=25), POLICY)
    assert len(later.triggers) == 1


def test_performance_under_the_floor_retrains_only_with_enough_frauds_to_judge():
    def performance(storage_id, pr_auc, frauds):
        return Finding(storage_id, PERFORMANCE, "2026-10-01", {"pr_auc": pr_auc, "frauds": frauds})

    assert decide([performance(1, 0.2, 4)], RetrainCursor(), NOW, POLICY).triggers == []
    assert decide([performance(1, 0.5, 40)], RetrainCursor(), NOW, POLICY).triggers == []
    [trigger] = decide([performance(1, 0.2, 40)], RetrainCursor(), NOW, POLICY).triggers
    assert trigger.reason == "PR-AUC 0.200 < 0.4 on 2026-10-01 (40 frauds)"


def test_a_report_without_a_verdict_is_no_reason_to_retrain():
    decision = decide([drift(3, None)], RetrainCursor(), NOW, POLICY)
    assert decision.triggers == [] and decision.cursor.seen == {DRIFT: 3}


def test_the_cursor_survives_its_text_form():
    cursor = RetrainCursor({DRIFT: 4, PERFORMANCE: 9}, NOW)
    assert RetrainCursor.parse(cursor.dump()) == cursor
    assert RetrainCursor.parse(None) == RetrainCursor()


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        yield instance


def _tick(instance, cursor, monitoring):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"monitoring": monitoring}
    )
    return drift_retrain_sensor(context)


def test_the_sensor_requests_one_training_run_per_drifted_report(instance, tmp_path):
    monitoring = MonitoringResource(reports_dir=str(tmp_path))
    for day, alarm in (("2026-11-28", False), ("2026-11-29", True)):
        instance.report_runless_asset_event(
            dg.AssetMaterialization(DRIFT_REPORT, partition=day, metadata=_verdict(alarm))
        )
    first = _tick(instance, None, monitoring)
    [request] = first.run_requests
    assert request.tags["fraud/trigger_partition"] == "2026-11-29"
    assert request.run_key.startswith(f"{DRIFT}:2026-11-29:")
    assert not request.run_config  # the gate's own tolerances hold for every retrain
    # The daemon stores the cursor in the instance: the next tick, or a restarted daemon's,
    # starts from it and asks for nothing more until a new report crosses.
    second = _tick(instance, first.cursor, monitoring)
    assert second.run_requests == [] and second.skip_reason
    instance.report_runless_asset_event(
        dg.AssetMaterialization(DRIFT_REPORT, partition="2026-11-30", metadata=_verdict(True))
    )
    third = _tick(instance, second.cursor, monitoring)
    assert third.run_requests == [] and "cooldown" in third.skip_reason.skip_message
    no_cooldown = MonitoringResource(reports_dir=str(tmp_path), retrain_cooldown_hours=0.0)
    assert len(_tick(instance, second.cursor, no_cooldown).run_requests) == 1


def test_the_sensor_targets_the_training_job():
    from definitions import defs

    sensor = defs.resolve_sensor_def("drift_retrain_sensor")
    assert sensor.job_name == "training_job"


def test_yesterdays_reports_are_requested_once_after_three_in_the_morning(instance):
    from assets.monitoring import drift_report, model_performance
    from resources import build_resources

    reports = dg.Definitions(assets=[drift_report, model_performance], resources=build_resources())

    def at(hour: int, minute: int, cursor=None):
        when = dt.datetime(2026, 11, 30, hour, minute, tzinfo=dt.UTC)
        return dg.evaluate_automation_conditions(
            defs=reports, instance=instance, evaluation_time=when, cursor=cursor
        )

    before = at(2, 55)
    assert before.total_requested == 0
    after = at(3, 5, before.cursor)
    assert after.get_requested_partitions(DRIFT_REPORT) == {"2026-11-29"}
    assert after.get_requested_partitions(MODEL_PERFORMANCE) == {"2026-11-29"}
    assert at(3, 35, after.cursor).total_requested == 0  # the tick was answered
