"""Shared fixtures: an isolated FRAUD_HOME per test, a Spark session, lakehouse runs."""

import datetime as dt
import os
import socket
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest

from assets.metadata import materialized  # noqa: F401 - the tests' name for it
from assets.partitions import range_tags
from demo.services import ensure_redis, flush_redis_db
from settings.env import prepare_process_environment


@pytest.fixture
def fraud_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh FRAUD_HOME; dbt (a subprocess) sees it through the environment."""
    home = tmp_path / "fraud_home"
    monkeypatch.setenv("FRAUD_HOME", str(home))
    # mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI: one test's store must not leak on.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("BENTOML_HOME", raising=False)
    prepare_process_environment()
    return home


@pytest.fixture(scope="session")
def spark_resource():
    from resources.spark import SparkResource

    return SparkResource(driver_memory="2g", shuffle_partitions=2)


@pytest.fixture(scope="session")
def spark(spark_resource):
    with spark_resource.session() as session:
        yield session


def run_lakehouse(selection, start: dt.date, end: dt.date, instance=None, spark_resource=None):
    """Materialize `selection` (asset keys or a selection string) for days [start, end]."""
    from assets import asset_checks, lakehouse_assets
    from resources import build_resources

    resources = build_resources()
    if spark_resource is not None:
        resources["spark"] = spark_resource
    return dg.materialize(
        [*lakehouse_assets, *asset_checks],
        selection=selection,
        resources=resources,
        instance=instance or dg.DagsterInstance.ephemeral(),
        tags=range_tags(start, end),
        raise_on_error=False,
    )


def check_results(result) -> dict[tuple[str, str], bool]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for e in (
            ev.event_specific_data
            for ev in result.all_events
            if ev.event_type_value == "ASSET_CHECK_EVALUATION"
        )
    }


REDIS_TEST_DB = 13


@pytest.fixture(params=["sqlite", "redis"])
def online_kind(request, monkeypatch):
    """Every online-store test runs against SQLite and against a real Redis."""
    if request.param == "redis":
        ensure_redis()
        flush_redis_db(REDIS_TEST_DB)
        monkeypatch.setenv("FEAST_ONLINE_STORE", f"redis://127.0.0.1:6379,db={REDIS_TEST_DB}")
    return request.param


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def connect_url(tmp_path_factory):
    """A Spark Connect server from the pyspark package, standing in for a cluster: its URL."""
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    folder = tmp_path_factory.mktemp("spark-connect")
    port = free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home),
        "SPARK_LOG_DIR": str(folder),
        "SPARK_PID_DIR": str(folder),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    subprocess.run(
        ["bash", str(spark_home / "sbin/start-connect-server.sh"), "--master", "local[1]",
         "--conf", f"spark.connect.grpc.binding.port={port}",
         "--conf", "spark.sql.session.timeZone=UTC", "--conf", "spark.ui.enabled=false"],
        # The daemon it forks would hold captured pipes open forever: no capture.
        env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        else:
            logs = "\n".join(p.read_text()[-2000:] for p in folder.glob("*.out"))
            pytest.fail(f"Spark Connect server did not open port {port}:\n{logs}")
        yield f"sc://127.0.0.1:{port}"
    finally:
        subprocess.run(
            ["bash", str(spark_home / "sbin/stop-connect-server.sh")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
