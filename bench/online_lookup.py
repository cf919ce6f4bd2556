"""Benchmark: online lookup of the fraud_model_v1 feature service (31 features, 6 views).

    python -m bench.online_lookup [--lookups 10000 --customers 20000]

For SQLite and for Redis (127.0.0.1:6379, db 12, flushed): fills a throw-away FRAUD_HOME with
gold-shaped features (Feast apply + materialize through the Dagster assets) and pushed velocity
values, then times, after a warm-up:
- in-process, the project's path (`features.lookup.OnlineFeatures`) and Feast's SDK
  (`FeatureStore.get_online_features`), one entity row per call and 64 rows per call;
- over HTTP, the feature server as deployed (`python -m serving.feature_server`), one keep-alive
  connection, one entity row and 64 rows per call.
Targets (issue 4): in-process p99 <= 1 ms for one entity and <= 2 ms for 64 (Redis); over HTTP
p99 <= 3 ms with no call over 20 ms in 10k.
"""

import argparse
import datetime as dt
import gc
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.servers import start_server, stop_server

REDIS_DB = 12
HEADER = (
    "| store | path | rows per call | calls | p50 ms | p99 ms | max ms | calls > 20 ms |\n"
    "|---|---|---|---|---|---|---|---|"
)
PORT = 16566  # not 6566: a developer's `make feature-server` may hold it
BATCH = 64
COUNTRIES = ["US", "GB", "DE", "FR", "BR"]


def _entity(key: str, i: int, merchants: int) -> str:
    """The value of join key `key` for the benchmark's customer number `i`."""
    return {
        "customer_id": f"C{i}",
        "card_id": f"K{i}",
        "device_id": f"D{i}",
        "merchant_id": f"M{i % merchants}",
        "merchant_country": COUNTRIES[i % len(COUNTRIES)],
    }[key]


def _fill(customers: int, merchants: int) -> None:
    """Two days of features (ending yesterday) for every entity, online, and velocity pushes."""
    import dagster as dg
    import pandas as pd
    import pyarrow as pa
    from feast.data_source import PushMode

    from assets.features import feast_registry, online_store
    from features.online_store import BATCH_VIEWS
    from lakehouse.delta import overwrite_days
    from resources import build_resources

    resources = build_resources()
    feast = resources["feast"]
    today = dt.datetime.now(dt.UTC).date()
    days = [today - dt.timedelta(days=2), today - dt.timedelta(days=1)]
    rng = np.random.default_rng(7)
    contents = feast.definitions()
    join_key_of = {entity.name: entity.join_key for entity in contents.entities}
    for view in contents.feature_views:
        if view.name not in BATCH_VIEWS:
            continue
        keys = [join_key_of[name] for name in view.entities]
        n = merchants if keys == ["merchant_id"] else customers
        columns = {
            **{key: [_entity(key, i, merchants) for i in range(n)] * 2 for key in keys},
            "day": [d for d in days for _ in range(n)],
            "feature_timestamp": [
                dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), dt.UTC)
                for d in days
                for _ in range(n)
            ],
        }
        for field in view.features:
            integer = "Int" in str(field.dtype)
            columns[field.name] = (
                rng.integers(0, 200, 2 * n) if integer else rng.gamma(2, 40, 2 * n).round(2)
            )
        overwrite_days(view.batch_source.path, pa.table(columns), *days)
    instance = dg.DagsterInstance.ephemeral()
    tags = {
        "dagster/asset_partition_range_start": days[0].isoformat(),
        "dagster/asset_partition_range_end": days[1].isoformat(),
    }
    assert dg.materialize([feast_registry], resources=resources, instance=instance).success
    assert dg.materialize([online_store], resources=resources, instance=instance, tags=tags).success
    store = feast.store()
    now = pd.Timestamp.now(tz="UTC")
    for entity, prefix in (("card", "K"), ("customer", "C")):
        store.push(
            f"{entity}_velocity_push",
            pd.DataFrame(
                {
                    f"{entity}_id": [f"{prefix}{i}" for i in range(customers)],
                    "txn_count_10m": rng.integers(0, 5, customers),
                    "txn_count_1h": rng.integers(0, 20, customers),
                    "amount_sum_1h": rng.gamma(2, 40, customers).round(2),
                    "event_timestamp": now,
                }
            ),
            to=PushMode.ONLINE,
        )


def _rows(n: int, customers: int, merchants: int) -> list[dict[str, str]]:
    keys = ["customer_id", "merchant_id", "card_id", "device_id", "merchant_country"]
    picks = [random.randrange(customers) for _ in range(n)]
    return [{key: _entity(key, i, merchants) for key in keys} for i in picks]


def _time(call, make_args, lookups: int, warmup: int) -> np.ndarray:
    """Milliseconds per call, after `warmup` untimed calls; arguments are made outside the clock."""
    for _ in range(warmup):
        call(make_args())
    # As a serving process does once it has loaded: long-lived objects leave the collector's
    # view, so a collection does not walk Dagster's and Feast's heap in the middle of a call.
    gc.collect()
    gc.freeze()
    out = np.empty(lookups)
    for i in range(lookups):
        args = make_args()
        started = time.perf_counter()
        call(args)
        out[i] = (time.perf_counter() - started) * 1000
    return out


def _line(backend: str, path: str, rows: int, ms: np.ndarray) -> str:
    p50, p99 = np.percentile(ms, [50, 99])
    return (
        f"| {backend} | {path} | {rows} | {len(ms):,} | {p50:.3f} | {p99:.3f} | {ms.max():.2f} "
        f"| {(ms > 20).sum()} |"
    )


def _http_client(port: int, features: list[str]):
    """A keep-alive client asking for the service's features by name: the server rebuilds a
    feature service from the registry on every request that names one (+1.5 ms at the median)."""
    import http.client
    import json

    connection = http.client.HTTPConnection("127.0.0.1", port)

    def call(rows: list[dict[str, str]]) -> None:
        body = json.dumps(
            {
                "features": features,
                "entities": {k: [r[k] for r in rows] for k in rows[0]},
                "full_feature_names": True,
            }
        )
        connection.request(
            "POST", "/get-online-features", body, {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"feature server answered {response.status}: {payload[:300]!r}")

    return call


def _backend(name: str, args) -> None:
    from features.lookup import OnlineFeatures
    from resources import build_resources

    _fill(args.customers, args.merchants)
    store = build_resources()["feast"].store()
    service = store.get_feature_service("fraud_model_v1")
    lookup = OnlineFeatures.for_service(store, "fraud_model_v1")

    def sdk(rows):
        store.get_online_features(
            features=service, entity_rows=rows, full_feature_names=True
        ).to_dict()

    def rows_of(n):
        return lambda: _rows(n, args.customers, args.merchants)

    for path, call in (("project (in-process)", lookup.lookup), ("Feast SDK (in-process)", sdk)):
        for n, count in ((1, args.lookups), (BATCH, args.batch_lookups)):
            print(_line(name, path, n, _time(call, rows_of(n), count, args.warmup)), flush=True)
    server = start_server(
        [sys.executable, "-m", "serving.feature_server", "--port", str(PORT)],
        dict(os.environ),
        f"http://127.0.0.1:{PORT}/health",
    )
    try:
        names = [f"{v.name}:{f}" for v in lookup.views for f in v.features]
        call = _http_client(PORT, names)
        for n, count in ((1, args.lookups), (BATCH, args.batch_lookups)):
            ms = _time(call, rows_of(n), count, args.warmup)
            print(_line(name, "feature server (HTTP)", n, ms), flush=True)
    finally:
        stop_server(server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--batch-lookups", type=int, default=2_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--merchants", type=int, default=2_000)
    parser.add_argument("--backend", choices=["sqlite", "redis"], action="append")
    parser.add_argument("--no-header", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    from demo.services import ensure_redis, flush_redis_db
    from settings.env import prepare_process_environment

    backends = args.backend or ["sqlite", "redis"]
    if len(backends) > 1:
        # One process per store, as a service has: neither sees the other's heap or threads.
        print(HEADER, flush=True)
        for backend in backends:
            command = [sys.executable, "-m", "bench.online_lookup", *sys.argv[1:]]
            command = [c for c in command if c not in ("--backend", *backends)]
            done = subprocess.run([*command, "--backend", backend, "--no-header"])
            if done.returncode:
                return done.returncode
        return 0
    if not args.no_header:
        print(HEADER, flush=True)
    backend = backends[0]
    home = Path(tempfile.mkdtemp(prefix="fraud-lookup-"))
    os.environ["FRAUD_HOME"] = str(home)
    if backend == "redis":
        ensure_redis()
        flush_redis_db(REDIS_DB)
        os.environ["FEAST_ONLINE_STORE"] = f"redis://127.0.0.1:6379,db={REDIS_DB}"
    else:
        os.environ.pop("FEAST_ONLINE_STORE", None)
    prepare_process_environment()
    try:
        _backend(backend, args)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"machine: {os.cpu_count()} cores; date {time.strftime('%Y-%m-%d')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
