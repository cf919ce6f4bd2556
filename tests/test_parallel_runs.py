"""Eight days backfilled as eight queued Dagster runs (the daemon runs four at once, the dbt step
one at a time through its pool), while a stream writer appends to the prediction log: every run
succeeds, every table ends exactly as one run of the eight days leaves it, the log holds every
appended row once."""

import datetime as dt
import os
import shutil
import subprocess
import sys
import time

import dagster as dg
import pytest

from demo.dagster_processes import FINISHED, Daemon
from lakehouse.delta import ALL_DAYS, read_days
from settings.env import REPO_ROOT, prepare_process_environment
from simulator.landing import generate
from tests.support.lakehouse import run_lakehouse, table_rows

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.dbt, pytest.mark.faults]
START = dt.date(2026, 1, 1)
DAYS = [START + dt.timedelta(days=i) for i in range(8)]
END = DAYS[-1]
APPENDS = """
import datetime as dt, sys
from serving.prediction_log import PredictionLogWriter
from tests.support.rows import prediction_log_rows

writer = PredictionLogWriter(sys.argv[1], flush_s=0.5)
for batch in range(60):
    writer.add(prediction_log_rows(*(f"stream-{batch}-{i}" for i in range(20))))
    writer.flush() if batch % 3 == 0 else None
writer.close()
"""


def _queued_backfill(days: list[dt.date]) -> None:
    """`dagster job backfill` of the lakehouse job, a run per day, into the daemon's queue."""
    done = subprocess.run(
        [str(REPO_ROOT / ".venv/bin/dagster"), "job", "backfill", "-w", "workspace.yaml",
         "-j", "lakehouse_job", "--partitions", ",".join(d.isoformat() for d in days),
         "--noprompt"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _finished_runs(instance: dg.DagsterInstance, count: int, daemon: Daemon, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and daemon.alive():
        runs = instance.get_runs(dg.RunsFilter(job_name="lakehouse_job"))
        if len(runs) >= count and all(r.status in FINISHED for r in runs):
            return runs
        time.sleep(2)
    raise AssertionError(f"{count} runs did not finish in {timeout_s:.0f} s: {daemon.log}")


def test_eight_queued_partition_runs_beside_stream_appends_lose_and_double_nothing(
    tmp_path, monkeypatch, spark_resource, connect_url
):
    clean, parallel = tmp_path / "clean", tmp_path / "parallel"
    for home in (clean, parallel):
        generate(home / "landing", days=len(DAYS), customers=120, seed=13, malformed_rate=0.02)
    monkeypatch.setenv("FRAUD_HOME", str(clean))
    prepare_process_environment()
    assert run_lakehouse(None, START, END, spark_resource=spark_resource).success

    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(REPO_ROOT / "deploy/local/dagster.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("FRAUD_HOME", str(parallel))
    monkeypatch.setenv("SPARK_REMOTE", connect_url)  # four runs' Spark steps on one server
    monkeypatch.delenv("BENTOML_HOME", raising=False)
    prepare_process_environment()
    log = str(parallel / "lakehouse/monitoring/prediction_log")
    with dg.DagsterInstance.get() as instance, Daemon(tmp_path / "daemon.log") as daemon:
        _queued_backfill(DAYS[4:])  # the later days first: their windows miss the earlier days
        _queued_backfill(DAYS[:4])
        appends = subprocess.Popen(
            [sys.executable, "-c", APPENDS, log],
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stderr=subprocess.PIPE,
            text=True,
        )
        runs = _finished_runs(instance, len(DAYS), daemon, timeout_s=900)
        _, stderr = appends.communicate(timeout=300)
        assert appends.returncode == 0, stderr[-2000:]

    assert sorted(r.tags["dagster/partition"] for r in runs) == [d.isoformat() for d in DAYS]
    failed = [r.tags["dagster/partition"] for r in runs if r.status != dg.DagsterRunStatus.SUCCESS]
    assert not failed, f"runs of {failed} failed (see the instance at {dagster_home})"
    assert table_rows(parallel, START, END) == table_rows(clean, START, END)
    logged = read_days(log, *ALL_DAYS).column("transaction_id").to_pylist()
    assert sorted(logged) == sorted(f"stream-{b}-{i}" for b in range(60) for i in range(20))
