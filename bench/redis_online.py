"""The demo's newest features in a Redis online store: the production setting of the serving
benchmarks (the demo itself serves from SQLite)."""

import datetime as dt
import os

REDIS_DB = 10  # apart from the tests' and the other benchmarks' databases


def demo_features_in_redis(db: int = REDIS_DB) -> str:
    """Materialize the demo's last three days of daily features into Redis database `db` (flushed
    first) and point this process at it; returns the FEAST_ONLINE_STORE value."""
    import dagster as dg

    from assets.features import feast_registry, online_store
    from demo.services import ensure_redis, flush_redis_db
    from resources import build_resources

    ensure_redis()
    flush_redis_db(db)
    url = f"redis://127.0.0.1:6379,db={db}"
    os.environ["FEAST_ONLINE_STORE"] = url
    resources, instance = build_resources(), dg.DagsterInstance.ephemeral()
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    tags = {
        "dagster/asset_partition_range_start": (yesterday - dt.timedelta(days=2)).isoformat(),
        "dagster/asset_partition_range_end": yesterday.isoformat(),
    }
    assert dg.materialize([feast_registry], resources=resources, instance=instance).success
    assert dg.materialize([online_store], resources=resources, instance=instance, tags=tags).success
    return url
