"""A lakehouse run killed (SIGKILL, the whole process group: Dagster's process and Spark's JVM)
in the middle of silver, then again in the middle of gold, then run to the end, leaves every
table exactly as one clean run of the same landing files does: the same rows, no id twice."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lakehouse.delta import read_days
from settings.env import prepare_process_environment
from simulator.landing import generate
from tests.support.lakehouse import run_lakehouse, table_rows

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.dbt, pytest.mark.faults]
START, END = dt.date(2026, 1, 1), dt.date(2026, 1, 2)
RUN = f"""
import datetime as dt
from resources.spark import SparkResource
from settings.env import prepare_process_environment
from tests.support.lakehouse import run_lakehouse

prepare_process_environment()
spark = SparkResource(driver_memory="2g", shuffle_partitions=2)
run_lakehouse(None, dt.date.fromisoformat("{START}"), dt.date.fromisoformat("{END}"),
              spark_resource=spark)
"""


def _killed_once(home: Path, first_commit_of: str) -> None:
    """Run the lakehouse in its own process; SIGKILL it as soon as `first_commit_of` (a glob
    under the lakehouse) has a Delta commit."""
    run = subprocess.Popen(
        [sys.executable, "-c", RUN],
        env={**os.environ, "FRAUD_HOME": str(home), "PYTHONPATH": os.getcwd()},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    try:
        while not list((home / "lakehouse").glob(f"{first_commit_of}/_delta_log/*.json")):
            assert run.poll() is None, "the run ended before the kill"
            assert time.monotonic() < deadline, f"no commit to {first_commit_of} in 5 minutes"
            time.sleep(0.02)
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    assert run.returncode == -signal.SIGKILL


def test_runs_killed_mid_silver_and_mid_gold_then_rerun_equal_one_clean_run(
    tmp_path, monkeypatch, spark_resource
):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    for home in (clean, killed):
        generate(home / "landing", days=2, customers=150, seed=5, malformed_rate=0.02)
    monkeypatch.setenv("FRAUD_HOME", str(clean))
    prepare_process_environment()
    assert run_lakehouse(None, START, END, spark_resource=spark_resource).success

    _killed_once(killed, "silver/transactions")  # silver's first table written, not the rest
    _killed_once(killed, "gold/*")  # gold's first table exported, not the rest
    monkeypatch.setenv("FRAUD_HOME", str(killed))
    prepare_process_environment()
    assert run_lakehouse(None, START, END, spark_resource=spark_resource).success

    expected, got = table_rows(clean, START, END), table_rows(killed, START, END)
    assert got == expected
    assert sum(len(rows) for rows in got.values()) > 1000
    silver = read_days(str(killed / "lakehouse/silver/transactions"), START, END)
    ids = silver.column("transaction_id").to_pylist()
    assert len(ids) == len(set(ids))
