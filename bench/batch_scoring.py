"""Benchmark: batch scoring with the demo's champion and features (run `make demo` first).

    python -m bench.batch_scoring [--rows 1000000] [--chunk-rows 200000]

A throw-away lakehouse whose silver table holds `--rows` transactions on yesterday's partition
(the demo's silver rows repeated under new ids), then:
1. model only: the champion's packaged scoring (preprocessing and forward pass) of a ready
   feature frame of all the rows, in this process: rows/s (best of 3);
2. Delta -> Delta: `dagster asset materialize` of `scoring/batch_scores` and
   `monitoring/prediction_log` for that partition in its own process, online features (read
   silver, look up features, score, write both tables): rows/s inside the asset (its
   `rows_per_s`), the command's wall time, and the peak resident memory of the process tree.
Targets (issue 6): model only >= 800k rows/s; Delta -> Delta >= 300k rows/s in <= 4 GiB."""

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time

GIB = 1024**3


def _silver(rows: int, day: dt.date):
    """`rows` silver transactions on `day`: the demo's, repeated under new transaction ids."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from lakehouse.delta import ALL_DAYS, read_days
    from serving.transaction import SCORING_COLUMNS
    from settings.env import lakehouse_root

    demo = read_days(f"{lakehouse_root()}/silver/transactions", *ALL_DAYS, columns=SCORING_COLUMNS)
    picked = demo.take(np.arange(rows) % demo.num_rows)
    ids = pc.binary_join_element_wise(
        picked["transaction_id"], pa.array((np.arange(rows) // demo.num_rows).astype(str)), "-"
    )
    seconds = (np.arange(rows) * 86_400 // max(rows, 1)).astype("timedelta64[s]")
    stamps = pa.array(np.datetime64(day.isoformat(), "s") + seconds).cast(pa.timestamp("us", "UTC"))
    for name, column in (("transaction_id", ids), ("event_timestamp", stamps)):
        at = picked.schema.get_field_index(name)
        picked = picked.set_column(at, name, column.cast(picked.schema.field(at).type))
    return picked.append_column("day", pa.array([day] * rows, pa.date32()))


def _model_only(frame_rows) -> float:
    """Best rows/s of 3 of the champion's packaged scoring of a ready feature frame."""
    import mlflow

    from features.lookup import OnlineFeatures
    from features.store import FEATURE_SERVICE, open_serving_store
    from ml.registry import load_by_alias
    from serving.scoring import CircuitBreaker, Scorer
    from settings.env import fraud_home, mlflow_tracking_uri

    mlflow.set_tracking_uri(mlflow_tracking_uri())
    model, version = load_by_alias("champion")
    features = OnlineFeatures.for_service(open_serving_store(fraud_home()), FEATURE_SERVICE)
    scorer = Scorer(model, version, features, breaker=CircuitBreaker(timeout_ms=600_000))
    frame = scorer.score(frame_rows).frame
    inputs = {name: frame[name] for name in scorer.inputs}
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        scorer._probabilities(inputs)
        best = max(best, frame_rows.num_rows / (time.perf_counter() - started))
    print(f"model v{version}: {len(inputs)} inputs")
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=200_000)
    args = parser.parse_args()

    import dagster as dg

    from assets.keys import BATCH_SCORES
    from bench.process_tree import run_measured
    from lakehouse.delta import overwrite_days
    from settings.env import prepare_process_environment

    prepare_process_environment()
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    silver = _silver(args.rows, day)
    lakehouse = tempfile.mkdtemp(prefix="fraud-batch-bench-")
    overwrite_days(f"{lakehouse}/silver/transactions", silver, day, day)
    print(f"{silver.num_rows:,} silver rows on {day} in {lakehouse}")

    print(f"model only: {_model_only(silver):,.0f} rows/s")

    # The online path: this lakehouse holds silver only (point-in-time features would read the
    # gold and velocity tables; their rate is in bench/RESULTS.md, from the loop benchmark).
    scoring = {"chunk_rows": args.chunk_rows, "features": "online"}
    config = {"ops": {"batch_scoring": {"config": scoring}}}
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    command = [dagster, "asset", "materialize", "-m", "definitions", "--partition", day.isoformat(),
               "--select", "scoring/batch_scores,monitoring/prediction_log",
               "--config-json", json.dumps(config)]  # fmt: skip
    dagster_home = tempfile.mkdtemp(prefix="fraud-batch-bench-dagster-")  # not the demo's runs
    env = {**os.environ, "LAKEHOUSE_URI": lakehouse, "DAGSTER_HOME": dagster_home}
    code, wall, peak = run_measured(command, env=env)
    if code:
        print(f"materialization failed ({code})")
        return code
    os.environ["DAGSTER_HOME"] = dagster_home
    event = dg.DagsterInstance.get().get_latest_materialization_event(BATCH_SCORES)
    meta = event.asset_materialization.metadata
    figures = {name: meta[name].value for name in ("rows_per_s", "scoring_s", "duration_s")}
    print(f"Delta -> Delta: {meta['dagster/row_count'].value:,} rows, chunks of "
          f"{args.chunk_rows:,}: {figures['rows_per_s']:,} rows/s from the first read to the "
          f"last commit ({figures['scoring_s']} s; the asset {figures['duration_s']} s with its "
          f"start-up); command {wall:.1f} s wall; peak {peak / GIB:.2f} GiB")  # fmt: skip
    print(f"machine: {os.cpu_count()} cores; date {time.strftime('%Y-%m-%d')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
