"""Shared fixtures (an isolated FRAUD_HOME per test, a Spark session, the online store on SQLite
and Redis, a Spark Connect server) and the check that every test carries one tier marker."""

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from demo.services import ensure_redis, flush_redis_db
from settings.env import prepare_process_environment
from tests.support.network import free_port
from tests.support.online_store import REDIS_TEST_DB


@pytest.fixture
def fraud_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh FRAUD_HOME; dbt (a subprocess) sees it through the environment."""
    home = tmp_path / "fraud_home"
    monkeypatch.setenv("FRAUD_HOME", str(home))
    # mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI: one test's store must not leak on.
    # setenv first, so that teardown undoes an export made during the test (a delenv of an
    # unset variable records nothing to undo).
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
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


@pytest.fixture(params=["sqlite", "redis"])
def online_kind(request, monkeypatch):
    """Every online-store test runs against SQLite and against a real Redis."""
    if request.param == "redis":
        ensure_redis()
        flush_redis_db(REDIS_TEST_DB)
        monkeypatch.setenv("FEAST_ONLINE_STORE", f"redis://127.0.0.1:6379,db={REDIS_TEST_DB}")
    return request.param


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


TIERS = ("unit", "integration", "e2e")
# A test that needs one of these (or is marked spark or dbt) is not a unit test.
NOT_UNIT_MARKERS = ("spark", "dbt")
NOT_UNIT_FIXTURES = ("spark", "spark_resource", "connect_url", "online_kind")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: every collected test is checked
def pytest_collection_modifyitems(config, items):
    """Refuse the session when a test carries no tier marker or several (`make test-fast` runs
    `-m unit`: an unmarked test would silently run in no tier), or is `unit` but needs Spark,
    dbt or a service."""
    wrong = []
    for item in items:
        tiers = [mark.name for mark in item.iter_markers() if mark.name in TIERS]
        if len(tiers) != 1:
            wrong.append(f"{item.nodeid}: {', '.join(tiers) or 'no tier'}")
        elif tiers == ["unit"]:
            needs = [m for m in NOT_UNIT_MARKERS if item.get_closest_marker(m)]
            needs += [f for f in NOT_UNIT_FIXTURES if f in getattr(item, "fixturenames", ())]
            if needs:
                wrong.append(f"{item.nodeid}: unit, but needs {', '.join(dict.fromkeys(needs))}")
    if wrong:
        raise pytest.UsageError(
            f"every test carries exactly one tier marker of {', '.join(TIERS)} (a unit test needs "
            "no Spark, dbt or service); these do not:\n  " + "\n  ".join(wrong)
        )
