"""SPARK_REMOTE: the silver rules run unchanged through Spark Connect (a local Connect server
started from the pyspark package stands in for a cluster)."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyspark
import pytest

from resources.settings import REPO_ROOT

pytestmark = pytest.mark.spark
SPARK_HOME = Path(pyspark.__file__).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def connect_url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spark-connect")
    port = _free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOG_DIR": str(folder),
        "SPARK_PID_DIR": str(folder),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    subprocess.run(
        ["bash", str(SPARK_HOME / "sbin/start-connect-server.sh"), "--master", "local[1]",
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
            ["bash", str(SPARK_HOME / "sbin/stop-connect-server.sh")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


# A process holds either a local or a remote Spark session, and the suite's local one is
# already up: the Connect client runs in a process of its own, as a run worker would.
CLIENT = """
import datetime as dt, json, sys
import pyarrow as pa
from lakehouse.landing import TRANSACTIONS
from lakehouse.silver import clean_transactions
from resources.spark import SparkResource

schema = TRANSACTIONS.bronze_schema()
base = {f: "x" for f in TRANSACTIONS.fields} | {
    "timestamp": "2026-01-05T10:00:00Z", "currency": "USD", "_source_file": "f.csv",
    "day": dt.date(2026, 1, 5),
}
rows = [
    base | {"transaction_id": "t1", "amount": "12.00", "_source_line": 2},
    base | {"transaction_id": "t1", "amount": "12.00", "_source_line": 3},
    base | {"transaction_id": "t2", "amount": "abc", "_source_line": 4},
]
bronze = pa.table({n: [r.get(n) for r in rows] for n in schema.names}, schema=schema)
with SparkResource(remote=sys.argv[1]).session() as session:
    kind = type(session).__module__
    cleaned = clean_transactions(session.createDataFrame(bronze))
print(json.dumps({
    "session": kind,
    "valid": cleaned.valid.column("transaction_id").to_pylist(),
    "reasons": cleaned.rejected.column("reason").to_pylist(),
    "duplicates": cleaned.duplicates,
}))
"""


def test_silver_rules_run_through_spark_connect(connect_url):
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, connect_url],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["session"].startswith("pyspark.sql.connect")
    assert result["valid"] == ["t1"]
    assert result["reasons"] == ["unparseable_amount"]
    assert result["duplicates"] == 1
