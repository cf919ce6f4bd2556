"""Feast's configuration per environment, in code: the same definitions (feature_repo/) on SQLite
or Redis, with a file or SQL registry. Shared by the Dagster resource and the serving paths."""

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from settings.secrets import redacted

if TYPE_CHECKING:
    from feast import FeatureStore

FEATURE_REPO = Path(__file__).resolve().parent.parent / "feature_repo"
PROJECT = "fraud_platform"
FEATURE_SERVICE = "fraud_model_v1"  # the features of the fraud-detector model
# Point-in-time joins in DuckDB over the Delta sources (features/delta_offline_store)
DELTA_OFFLINE_STORE = "features.delta_offline_store.DeltaOfflineStore"
# Long-running readers (the scoring API, the stream worker, Feast's server) keep the registry
# this long: a `feast apply` reaches them within a minute, and a call does not re-read it.
SERVING_REGISTRY_CACHE_S = 60


def feast_settings(
    registry: str,
    online_store: str = "sqlite",
    sqlite_path: str = "",
    registry_cache_s: int | None = None,
) -> dict:
    """The feature_store.yaml content: `online_store` is `sqlite` (file at `sqlite_path`) or a
    `redis://host:port` URL; `registry` is a file path or a SQL URL (postgresql://...), cached
    `registry_cache_s` (default: a file registry is read on every call, a SQL one kept 60 s)."""
    if online_store == "sqlite":
        online = {"type": "sqlite", "path": sqlite_path}
    elif online_store.startswith(("redis://", "rediss://")):
        # skip_dedup: write what materialize reads (the newest row in the window), as SQLite
        # does; with dedup, Redis ignores a corrected value that keeps its timestamp.
        online = {
            "type": "redis",
            "connection_string": redis_connection_string(online_store),
            "skip_dedup": True,
        }
    else:
        raise ValueError(
            f"FEAST_ONLINE_STORE={redacted(online_store)!r}: use 'sqlite' or "
            "'redis://[:password@]host:port[/db]'"
        )
    sql = "://" in registry
    if registry_cache_s is None:
        registry_cache_s = SERVING_REGISTRY_CACHE_S if sql else 0
    registry_config = {
        **({"registry_type": "sql"} if sql else {}),
        "path": registry,
        "cache_ttl_seconds": registry_cache_s,
    }
    return {
        "project": PROJECT,
        "provider": "local",
        "registry": registry_config,
        "online_store": online,
        "offline_store": {"type": DELTA_OFFLINE_STORE},
        "entity_key_serialization_version": 3,
    }


def redis_connection_string(url: str) -> str:
    """Feast's Redis connection string (`host:port,db=1,password=...`) of a Redis URL
    (`redis://[user:password@]host:port[/db]`, `rediss://` for TLS); Feast's own options may
    follow the URL after a comma (`redis://host:6379,db=12`)."""
    address, _, options = url.partition(",")
    parts = urlsplit(address)
    fields = [f"{parts.hostname}:{parts.port or 6379}"]
    if db := parts.path.strip("/"):
        fields.append(f"db={db}")
    if parts.username:
        fields.append(f"username={unquote(parts.username)}")
    if parts.password is not None:
        fields.append(f"password={unquote(parts.password)}")
    if parts.scheme == "rediss":
        fields.append("ssl=true")
    return ",".join([*fields, *filter(None, [options])])


def settings_from_environment(home: Path, registry_cache_s: int | None = None) -> dict:
    """FEAST_REGISTRY and FEAST_ONLINE_STORE, else the embedded files under `home`/feast."""
    return {
        "registry": os.environ.get("FEAST_REGISTRY") or str(home / "feast" / "registry.db"),
        "online_store": os.environ.get("FEAST_ONLINE_STORE") or "sqlite",
        "sqlite_path": str(home / "feast" / "online_store.db"),
        "registry_cache_s": registry_cache_s,
    }


def open_feature_store(**settings) -> "FeatureStore":
    """A FeatureStore of `feast_settings(**settings)` over feature_repo/."""
    from feast import FeatureStore, RepoConfig

    config = RepoConfig(**feast_settings(**settings), repo_path=FEATURE_REPO)
    return FeatureStore(config=config)


def open_serving_store(home: Path) -> "FeatureStore":
    """The feature store of this environment (`settings_from_environment`) for a long-running
    reader or pusher: its registry is cached `SERVING_REGISTRY_CACHE_S`."""
    return open_feature_store(**settings_from_environment(home, SERVING_REGISTRY_CACHE_S))
