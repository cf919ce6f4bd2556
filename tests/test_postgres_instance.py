"""A Dagster instance configured like production (deploy/dagster.yaml) on the local Postgres: a
materialization and its run are stored there, and the real daemon's sensor tick reads an event
from there and keeps its cursor there, across a restart. No secret reaches a log or an event."""

import json
import shutil
import time

import dagster as dg
import psycopg2
import pytest

from assets.keys import DRIFT_REPORT
from demo.dagster_processes import Daemon
from demo.services import fresh_postgres_database
from settings.env import REPO_ROOT

pytestmark = pytest.mark.e2e
DATABASE = "fraud_dagster_instance_test"
PASSWORD = "pg-sentinel-7f3a9c"  # trust auth ignores it: it is here to be looked for
API_KEY = "api-sentinel-51be02"


@pytest.fixture
def production_home(tmp_path, monkeypatch):
    """DAGSTER_HOME holding deploy/dagster.yaml, its variables pointing at the local Postgres."""
    fresh_postgres_database(DATABASE)
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    variables = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": "5432",
        "DAGSTER_PG_DB": DATABASE,
        "DAGSTER_PG_USERNAME": "postgres",
        "DAGSTER_PG_PASSWORD": PASSWORD,
        "FRAUD_API_KEY": API_KEY,
        "FRAUD_HOME": str(tmp_path / "fraud_home"),
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return home


def _rows(sql: str) -> list[tuple]:
    connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=DATABASE)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        connection.close()


def _drift_cursor(instance) -> dict | None:
    for state in instance.all_instigator_state():
        if state.name == "drift_retrain_sensor" and state.instigator_data is not None:
            cursor = state.instigator_data.cursor
            return json.loads(cursor) if cursor else None
    return None


def _wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"{what} within {timeout_s:.0f} s")


def test_runs_events_and_sensor_cursors_live_in_postgres(production_home, tmp_path):
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    @dg.asset(key=["monitoring", "instance_probe"])
    def probe() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"rows": 3})

    instance = dg.DagsterInstance.get()
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    result = dg.materialize([probe], instance=instance)
    assert result.success
    # Read back through the instance, and straight from Postgres's tables.
    event = instance.get_latest_materialization_event(dg.AssetKey(["monitoring", "instance_probe"]))
    assert event.asset_materialization.metadata["rows"].value == 3
    assert _rows("SELECT status FROM runs") == [("SUCCESS",)]

    # A drift report without an alarm: the daemon's sensor reads it and moves its cursor on.
    instance.report_runless_asset_event(
        dg.AssetMaterialization(DRIFT_REPORT, partition="2026-11-29", metadata={"alarm": False})
    )
    [record] = instance.fetch_materializations(DRIFT_REPORT, limit=1).records
    log = tmp_path / "daemon.log"
    with Daemon(log):
        cursor = _wait_for(
            lambda: _drift_cursor(dg.DagsterInstance.get()), 120, "no drift sensor tick stored"
        )
    assert cursor["seen"] == {DRIFT_REPORT.to_user_string(): record.storage_id}
    assert cursor["last_trigger"] is None
    assert _rows("SELECT count(*) FROM job_ticks")[0][0] >= 1

    # A restarted daemon starts from the stored cursor: the report is not judged again, and the
    # next tick stores the same cursor.
    ticks_before = _rows("SELECT count(*) FROM job_ticks")[0][0]
    with Daemon(log):
        _wait_for(
            lambda: _rows("SELECT count(*) FROM job_ticks")[0][0] > ticks_before + 1,
            120,
            "no tick after the restart",
        )
    assert _drift_cursor(dg.DagsterInstance.get()) == cursor
    assert not instance.get_runs(dg.RunsFilter(job_name="training_job"))

    # No secret in the daemon's log, in any event, nor in the runs' stored config.
    stored = (
        log.read_text()
        + json.dumps([str(row) for row in _rows("SELECT event FROM event_logs")])
        + json.dumps([str(row) for row in _rows("SELECT run_body FROM runs")])
    )
    assert PASSWORD not in stored and API_KEY not in stored
