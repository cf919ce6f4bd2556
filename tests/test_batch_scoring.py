"""Batch scoring of silver: the champion through the online scoring code, in chunks; scores and
prediction-log rows replaced, not doubled, when a partition is re-scored."""

import datetime as dt

import dagster as dg
import numpy as np
import pyarrow as pa
import pytest

from assets.scoring import batch_scoring
from lakehouse.delta import overwrite_days, read_days
from tests.support.champions import features_online_with_a_champion

NOW = dt.datetime.now(dt.UTC)
DAY = NOW.date() - dt.timedelta(days=1)
RECENT = (DAY - dt.timedelta(days=1), DAY)


def _silver(home, n: int) -> list[dict]:
    rng = np.random.default_rng(3)
    rows = [
        {
            "transaction_id": f"T{i}",
            "event_timestamp": dt.datetime.combine(DAY, dt.time(10), dt.UTC)
            + dt.timedelta(seconds=i),
            "customer_id": ["C1", "C2", "stranger"][i % 3],
            "card_id": "K1",
            "merchant_id": "M1",
            "merchant_category": ["grocery", "electronics"][i % 2],
            "merchant_country": "US",
            "device_id": None if i % 4 == 0 else "D1",
            "channel": ["pos", "online"][i % 2],
            "amount": float(rng.gamma(2, 30)),
            "currency": "USD",
            "amount_usd": round(float(rng.gamma(2, 30)), 2),
            "_source_file": "t.csv",
            "day": DAY,
        }
        for i in range(n)
    ]
    overwrite_days(
        str(home / "lakehouse/silver/transactions"), pa.Table.from_pylist(rows), DAY, DAY
    )
    return rows


def _score(resources, instance, chunk_rows: int):
    return dg.materialize(
        [batch_scoring], resources=resources, instance=instance,
        partition_key=DAY.isoformat(),
        run_config={"ops": {"batch_scoring": {"config": {
            "chunk_rows": chunk_rows, "features": "online"}}}},
    )  # fmt: skip


@pytest.mark.integration
def test_a_partition_is_scored_in_chunks_like_online_and_a_rerun_replaces_it(fraud_home):
    from features.lookup import OnlineFeatures
    from features.store import FEATURE_SERVICE
    from serving.scoring import CircuitBreaker, Scorer

    resources, version = features_online_with_a_champion(fraud_home, RECENT)
    instance = dg.DagsterInstance.ephemeral()
    rows = _silver(fraud_home, 250)

    first = _score(resources, instance, chunk_rows=100)  # three chunks
    assert first.success
    scores = read_days(str(fraud_home / "lakehouse/scoring/batch_scores"), DAY, DAY).to_pandas()
    assert len(scores) == 250 and set(scores["model_version"]) == {version}
    # the online path (the same Scorer on the same rows) gives the same scores
    import mlflow

    model = mlflow.pyfunc.load_model(f"models:/fraud-detector/{version}")
    store = resources["feast"].store()
    # the API's 250 ms lookup budget could degrade 250 rows on a busy machine: not this path's
    features = OnlineFeatures.for_service(store, FEATURE_SERVICE)
    online = Scorer(model, version, features, breaker=CircuitBreaker(timeout_ms=60_000)).score(rows)
    assert not online.degraded
    by_id = dict(zip(scores["transaction_id"], scores["score"], strict=True))
    assert np.allclose([by_id[r["transaction_id"]] for r in rows], online.scores, atol=1e-6)

    assert _score(resources, instance, chunk_rows=1000).success  # re-run: replaced, not added
    log = read_days(str(fraud_home / "lakehouse/monitoring/prediction_log"), DAY, DAY)
    log = log.to_pandas()
    assert len(read_days(str(fraud_home / "lakehouse/scoring/batch_scores"), DAY, DAY)) == 250
    assert len(log) == 250 and set(log["path"]) == {"batch"}
    stranger = log[log["transaction_id"] == "T2"].iloc[0]
    assert "unknown_customer" in stranger["reasons"]
    inputs = model.metadata.get_input_schema().input_names()
    assert set(stranger["features"]) == set(inputs)  # a struct: one field per model input
    assert stranger["features"]["customer_daily__missing"] is True
    assert stranger["features"]["amount_usd"] == rows[2]["amount_usd"]


@pytest.mark.unit
def test_as_of_without_online_features_is_refused_saying_why(fraud_home):
    from resources import build_resources

    result = dg.materialize(
        [batch_scoring], resources=build_resources(), partition_key=DAY.isoformat(),
        run_config={"ops": {"batch_scoring": {"config": {"as_of": NOW.isoformat()}}}},
        raise_on_error=False,
    )  # fmt: skip
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "as_of applies to online features" in str(failure.event_specific_data.error)


KILLED_RUN = """
import sys
import dagster as dg
from assets.scoring import batch_scoring
from resources import build_resources
from settings.env import prepare_process_environment

prepare_process_environment()
dg.materialize([batch_scoring], resources=build_resources(), partition_key=sys.argv[1],
               run_config={"ops": {"batch_scoring": {"config": {
                   "chunk_rows": 50, "features": "online"}}}})
"""


@pytest.mark.integration
@pytest.mark.faults
def test_a_batch_scoring_run_killed_mid_partition_then_rerun_scores_every_row_once(fraud_home):
    import os
    import signal
    import subprocess
    import sys
    import time

    from lakehouse.delta import table_version

    resources, _ = features_online_with_a_champion(fraud_home, RECENT)
    _silver(fraud_home, 3000)  # 60 chunks of 50
    log = str(fraud_home / "lakehouse/monitoring/prediction_log")
    run = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, DAY.isoformat()],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        start_new_session=True,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    try:
        while (table_version(log) or 0) < 3:  # a few chunks committed, most to come
            assert run.poll() is None, run.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no chunk committed in 5 minutes"
            time.sleep(0.02)
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    partial = read_days(log, DAY, DAY).num_rows
    assert 0 < partial < 3000  # killed in the middle of the partition

    assert _score(resources, dg.DagsterInstance.ephemeral(), chunk_rows=1000).success
    scores = read_days(str(fraud_home / "lakehouse/scoring/batch_scores"), DAY, DAY)
    logged = read_days(log, DAY, DAY).column("transaction_id").to_pylist()
    assert scores.num_rows == 3000 and len(logged) == 3000 and len(set(logged)) == 3000
