"""Benchmark: the point-in-time join of the feature service's views for the silver transactions
of the last `--days` days, by the configured offline store (DuckDB as-of joins over the Delta
sources, what the training set and the scores of closed days use) and by Feast's file (dask)
store, on the same rows of the same FRAUD_HOME (`make demo`'s, or `bench.lakehouse --keep`'s).
Each engine runs in a process of its own: its join's wall time, the peak memory of that process,
and the values that differ between the two (1e-6).

    python -m bench.point_in_time [--days 7] [--engines duckdb,file]"""

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.process_tree import run_measured

GIB = 1024**3
ENGINES = ("duckdb", "file")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.point_in_time", description=__doc__)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)  # one child's
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.engine:
        return _join(args.engine, Path(args.folder))

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from lakehouse.delta import ALL_DAYS
    from resources import build_resources
    from serving.transaction import SCORING_COLUMNS
    from settings.env import prepare_process_environment

    prepare_process_environment()
    lakehouse = build_resources()["lakehouse"]
    days = lakehouse.read("silver", "transactions", *ALL_DAYS, columns=["day"])["day"]
    last = pc.max(days).as_py()
    first = last - dt.timedelta(days=args.days - 1)
    rows = lakehouse.read("silver", "transactions", first, last, columns=SCORING_COLUMNS)
    print(f"{rows.num_rows:,} transactions of {first} .. {last}")
    engines = args.engines.split(",")
    with tempfile.TemporaryDirectory(prefix="pit-bench-") as folder:
        pq.write_table(rows, f"{folder}/rows.parquet")
        print(f"{'engine':8} {'join s':>8} {'process s':>10} {'peak GiB':>9}")
        for engine in engines:
            command = [sys.executable, "-m", "bench.point_in_time", "--engine", engine,
                       "--folder", folder]  # fmt: skip
            code, wall, peak = run_measured(command, env={**os.environ, "PYTHONPATH": os.getcwd()})
            if code:
                print(f"{engine} failed with exit code {code}")
                return code
            seconds = json.loads(Path(f"{folder}/{engine}.json").read_text())["seconds"]
            print(f"{engine:8} {seconds:8.1f} {wall:10.1f} {peak / GIB:9.2f}", flush=True)
        if len(engines) == 2:
            print(f"values differing: {_differing(folder, engines):,}")
    print(f"machine: {os.cpu_count()} cores; date {time.strftime('%Y-%m-%d')}")
    return 0


def _join(engine: str, folder: Path) -> int:
    """One engine's join of every view of the feature service, written to `folder`."""
    import pandas as pd
    import pyarrow.parquet as pq

    from features.offline import file_store_features, joined_at, point_in_time_join
    from features.store import FEATURE_SERVICE
    from features.views import service_views
    from resources import build_resources
    from settings.env import prepare_process_environment

    prepare_process_environment()
    store = build_resources()["feast"].store()
    views = [store.get_feature_view(s.name) for s in service_views(store, FEATURE_SERVICE)]
    rows = pq.read_table(folder / "rows.parquet").to_pandas()
    started = time.perf_counter()
    if engine == "duckdb":
        joined = point_in_time_join(store, rows, views)
    else:
        joined = rows
        for view in views:
            at = rows[[*view.join_keys, "event_timestamp"]]
            at = at.assign(event_timestamp=at.event_timestamp - joined_at(view))
            values = file_store_features(store, at, [view]).filter(like=f"{view.name}__")
            joined = pd.concat([joined, values], axis=1)
    seconds = time.perf_counter() - started
    features = joined[[c for c in joined.columns if "__" in c]].astype("float64")
    features.to_parquet(folder / f"{engine}.parquet")
    (folder / f"{engine}.json").write_text(json.dumps({"seconds": seconds}))
    return 0


def _differing(folder: str, engines: list[str]) -> int:
    import numpy as np
    import pandas as pd

    first, second = (pd.read_parquet(f"{folder}/{e}.parquet") for e in engines)
    if sorted(first.columns) != sorted(second.columns):
        raise SystemExit(f"the engines give different columns: {first.columns} {second.columns}")
    second = second[first.columns]
    return int((~np.isclose(first, second, rtol=0, atol=1e-6, equal_nan=True)).sum())


if __name__ == "__main__":
    sys.exit(main())
