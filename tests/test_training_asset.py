"""training/tuned_model: Ray Tune on a training set, the best trial in MLflow with lineage."""

import shutil

import dagster as dg
import mlflow
import pandas as pd
import pyarrow as pa
import pytest

from assets.training import tuned_model
from lakehouse.delta import overwrite_days
from resources import build_resources
from tests.support.rows import TRAINING_SET_DAY, synthetic_rows

pytestmark = pytest.mark.integration
# The final data-parallel fit is asked for where it is tested (and in test_data_parallel.py).
TINY = {"num_samples": 2, "max_epochs": 2, "final_fit_workers": 0}


def _training_set(home, labels_of=None) -> None:
    parts = [
        synthetic_rows(1500).assign(split="train"),
        synthetic_rows(500, seed=1).assign(split="validation"),
        synthetic_rows(500, seed=2).assign(split="test"),
    ]
    rows = pd.concat(parts, ignore_index=True).assign(day=TRAINING_SET_DAY)
    if labels_of is not None:
        rows["label"] = labels_of
    table = pa.Table.from_pandas(rows, preserve_index=False)
    overwrite_days(
        str(home / "lakehouse/features/training_set"), table, TRAINING_SET_DAY, TRAINING_SET_DAY
    )


def _run(config):
    return dg.materialize(
        [tuned_model],
        resources=build_resources(),
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {"training__tuned_model": {"config": config}}},
        raise_on_error=False,
    )


def test_the_search_and_its_final_fit_are_tracked_in_mlflow_with_lineage(fraud_home):
    _training_set(fraud_home)
    result = _run({**TINY, "final_fit_workers": 2})
    assert result.success
    [event] = result.get_asset_materialization_events()
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    assert meta["trials"] == 2 and 0 <= meta["test_pr_auc"] <= 1
    assert meta["final_fit"] == "Ray Train, 2 workers"
    assert "data:image/png;base64," in meta["pr_curve"]
    build_resources()["mlflow"].activate()
    parent = mlflow.get_run(meta["mlflow_run_id"])
    assert parent.data.tags["feature_service"] == "fraud_model_v1"
    assert parent.data.tags["training_set_delta_version"] == "0"
    assert parent.data.tags["dagster_run_id"] == result.run_id
    assert len(parent.data.tags["git_commit"]) == 40
    assert "test_recall_at_1pct_fpr" in parent.data.metrics
    nested = mlflow.search_runs(
        experiment_ids=[parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    names = list(nested["tags.mlflow.runName"])
    assert len(names) == 3 and names.count("final-fit") == 1  # two trials and the final fit
    final = nested[nested["tags.mlflow.runName"] == "final-fit"].iloc[0]
    assert final["params.workers"] == "2" and final["tags.engine"] == "ray_train"
    history = mlflow.tracking.MlflowClient().get_metric_history(final.run_id, "validation_pr_auc")
    assert [m.step for m in history] == [0, 1]  # one value per epoch
    assert parent.data.tags["final_fit"] == "ray_train"
    model = mlflow.pyfunc.load_model(meta["model_uri"])
    assert len(model.predict(synthetic_rows(10, seed=5).drop(columns="label"))) == 10


def test_a_training_set_with_one_class_fails_clearly_and_logs_nothing(fraud_home):
    _training_set(fraud_home, labels_of=0)
    result = _run(TINY)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "both classes" in failure.event_specific_data.error.message
    build_resources()["mlflow"].activate()
    assert mlflow.search_runs(search_all_experiments=True).empty


def test_a_rebuilt_training_set_starts_a_new_search_an_unchanged_one_resumes(fraud_home):
    _training_set(fraud_home)
    first = _run(TINY)
    again = _run(TINY)
    shutil.rmtree(fraud_home / "lakehouse/features/training_set")
    _training_set(fraud_home)  # rebuilt from scratch: version 0 again, a later commit
    rebuilt = _run(TINY)
    metas = [
        {
            k: v.value
            for k, v in r.get_asset_materialization_events()[0].materialization.metadata.items()
        }
        for r in (first, again, rebuilt)
    ]
    assert [m["resumed_search"] for m in metas] == [False, True, False]
    assert metas[0]["search"] == metas[1]["search"] != metas[2]["search"]


@pytest.mark.faults
def test_with_mlflows_database_stopped_mid_search_the_run_fails_then_a_rerun_recovers(
    fraud_home, monkeypatch
):
    """MLflow on Postgres; the database stops once the search has opened its run: the step
    fails with the database's error (nothing half-registered as a success); Postgres back,
    the same run again succeeds, without any cleanup."""
    import subprocess
    import threading
    import time

    import psycopg2

    from demo.services import ensure_postgres, fresh_postgres_database

    name = "mlflow_restart_test"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fresh_postgres_database(name))
    _training_set(fraud_home)
    stopped = threading.Event()

    def runs() -> int:
        connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=name)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM runs")
                return cursor.fetchone()[0]
        finally:
            connection.close()

    def stop_once_the_run_is_open():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if runs():
                    break
            except psycopg2.Error:  # the tables are not created yet
                pass
            time.sleep(0.05)
        subprocess.run("pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main stop",
                       shell=True, check=True)  # fmt: skip
        stopped.set()

    stopper = threading.Thread(target=stop_once_the_run_is_open)
    stopper.start()
    try:
        result = _run(TINY)
    finally:
        stopper.join()
        ensure_postgres()
    assert stopped.is_set() and not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.error.to_string()
    assert "OperationalError" in message or "connection" in message.lower(), message[-2000:]
    again = _run(TINY)  # Postgres is back: the same run, no manual step
    assert again.success
    [event] = again.get_asset_materialization_events()
    build_resources()["mlflow"].activate()
    parent = mlflow.get_run(event.materialization.metadata["mlflow_run_id"].value)
    assert parent.info.status == "FINISHED"
