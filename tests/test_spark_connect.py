"""SPARK_REMOTE: the silver rules run unchanged through Spark Connect (a local Connect server
started from the pyspark package stands in for a cluster)."""

import json
import os
import subprocess
import sys

import pytest

from settings.env import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.spark]
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
