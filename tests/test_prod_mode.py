"""FRAUD_ENV=prod: the production resource set, each backend chosen by its variable, runs a small
partition from landing to the online store with the local services standing in for the
cluster's: Spark Connect (SPARK_REMOTE), Redis (FEAST_ONLINE_STORE), Postgres (Feast's registry,
MLflow), and a lakehouse at LAKEHOUSE_URI. No code path differs from local but the resources.
Every backend's URL carries a password, and none of them reaches an event, a log line or the
output of the run."""

import json
import os
import subprocess
import sys
import time

import pytest

from demo.services import fresh_postgres_database
from settings.env import REPO_ROOT
from tests.support.network import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.dbt]
REDIS_DB = 12
# Trust auth ignores the Postgres ones: they are here to be looked for. Redis checks its own.
MLFLOW_PASSWORD = "mlflow-sentinel-2b7d"
REGISTRY_PASSWORD = "registry-sentinel-91c4"
REDIS_PASSWORD = "redis-sentinel-5e0a"
SECRETS = (MLFLOW_PASSWORD, REGISTRY_PASSWORD, REDIS_PASSWORD)
DAY = "2026-03-02"

# A process holds either a local or a remote Spark session, and the suite's local one is up:
# the run goes in a process of its own, as a run pod would.
RUN = """
import datetime as dt, json
import dagster as dg
from resources import build_resources
from settings.env import prepare_process_environment
from simulator.landing import generate
from assets.metadata import materialized
from assets.partitions import range_tags

prepare_process_environment()
import os
from pathlib import Path
generate(Path(os.environ["FRAUD_HOME"]) / "landing", days=2, customers=150, seed=5,
         start=dt.date(2026, 3, 1))
from definitions import defs
resources = build_resources()
day = dt.date.fromisoformat(os.environ["PROD_TEST_DAY"])
instance = dg.DagsterInstance.ephemeral()
result = defs.resolve_job_def("daily_job").execute_in_process(
    instance=instance, tags=range_tags(day, day), resources=resources,
    raise_on_error=False,
)
# Resources read their URLs at run time: the configured values are the variables' names.
configured = {"tracking_uri": resources["mlflow"].tracking_uri,
              "registry": resources["feast"].registry, "remote": resources["spark"].remote}
named = {k: type(v).__name__ for k, v in configured.items()}
with dg.build_resources({k: resources[k] for k in ("spark", "lakehouse", "mlflow")}) as r:
    r.mlflow.activate()
    with r.spark.session() as session:
        session_module = type(session).__module__
    spark_remote, lakehouse_root = r.spark.remote, r.lakehouse.root
print(json.dumps({
    "success": result.success,
    "resources": {name: type(r).__name__ for name, r in resources.items()},
    "configured_as": named,
    "spark_remote": spark_remote,
    "spark_session": session_module,
    "lakehouse_root": lakehouse_root,
    "materialized": {k: v.get("dagster/row_count") for k, v in materialized(result).items()},
    # Every event and log line of the run, as the UI and the run's log would show them.
    "logged": [str(entry) for entry in instance.all_logs(result.run_id)],
}))
"""


@pytest.fixture
def redis_with_password(tmp_path):
    """A Redis of its own that refuses clients without REDIS_PASSWORD: its port."""
    import redis

    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--requirepass", REDIS_PASSWORD, "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port, password=REDIS_PASSWORD)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.1)
    yield port
    server.terminate()
    server.wait(timeout=10)


def _with_password(url: str, password: str) -> str:
    return url.replace("postgres@", f"postgres:{password}@")


def test_prod_resources_run_a_partition_on_the_cluster_backends(
    tmp_path, connect_url, redis_with_password
):
    import mlflow
    import redis

    registry = fresh_postgres_database("fraud_feast_registry_prod_test")
    tracking = fresh_postgres_database("fraud_mlflow_prod_test")
    redis_url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis_with_password}/{REDIS_DB}"
    env = {
        **os.environ,
        "FRAUD_ENV": "prod",
        "FRAUD_HOME": str(tmp_path / "fraud_home"),
        "LAKEHOUSE_URI": str(tmp_path / "bucket" / "lakehouse"),
        "SPARK_REMOTE": connect_url,
        "FEAST_ONLINE_STORE": redis_url,
        "FEAST_REGISTRY": _with_password(registry, REGISTRY_PASSWORD),
        "MLFLOW_TRACKING_URI": _with_password(tracking, MLFLOW_PASSWORD),
        "PROD_TEST_DAY": DAY,
        "PYTHONPATH": str(REPO_ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", RUN], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["success"], done.stderr[-3000:]
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr
        assert not [line for line in out["logged"] if secret in line], secret
    assert any("redis://:***@127.0.0.1" in line for line in out["logged"])  # shown, masked
    assert out["configured_as"] == {
        "tracking_uri": "EnvVar",
        "registry": "EnvVar",
        "remote": "EnvVar",
    }
    assert out["spark_remote"] == connect_url
    assert out["spark_session"] == "pyspark.sql.connect.session"
    assert out["lakehouse_root"] == env["LAKEHOUSE_URI"]
    rows = out["materialized"]
    assert rows["silver/transactions"] > 0 and rows["features/online_store"] > 0
    # Each backend holds what the run wrote: Delta tables under LAKEHOUSE_URI, features in
    # Redis, the Feast registry and MLflow's experiment in Postgres.
    assert (tmp_path / "bucket" / "lakehouse" / "gold" / "customer_daily_features").is_dir()
    assert not (tmp_path / "fraud_home" / "lakehouse").exists()
    online = redis.Redis(port=redis_with_password, password=REDIS_PASSWORD, db=REDIS_DB)
    assert online.dbsize() > 0
    import sqlalchemy

    with sqlalchemy.create_engine(registry).connect() as connection:
        views = connection.execute(sqlalchemy.text("SELECT count(*) FROM feature_views")).scalar()
    assert views >= 4
    mlflow.set_tracking_uri(tracking)
    assert mlflow.get_experiment_by_name("fraud-detector") is not None
