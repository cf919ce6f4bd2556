"""Feast's configuration per environment, in code: the same definitions (feature_repo/) on SQLite
or Redis, with a file or SQL registry. Shared by the Dagster resource and the serving paths."""

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from feast import FeatureStore

FEATURE_REPO = Path(__file__).resolve().parent.parent / "feature_repo"
PROJECT = "fraud_platform"
FEATURE_SERVICE = "fraud_model_v1"  # the features of the fraud-detector model


def feast_settings(registry: str, online_store: str = "sqlite", sqlite_path: str = "") -> dict:
    """The feature_store.yaml content: `online_store` is `sqlite` (file at `sqlite_path`) or a
    `redis://host:port` URL; `registry` is a file path or a SQL URL (postgresql://...)."""
    if online_store == "sqlite":
        online = {"type": "sqlite", "path": sqlite_path}
    elif online_store.startswith("redis://"):
        # skip_dedup: write what materialize reads (the newest row in the window), as SQLite
        # does; with dedup, Redis ignores a corrected value that keeps its timestamp.
        online = {
            "type": "redis",
            "connection_string": online_store.removeprefix("redis://"),
            "skip_dedup": True,
        }
    else:
        raise ValueError(
            f"FEAST_ONLINE_STORE={online_store!r}: use 'sqlite' or 'redis://host:port'"
        )
    registry_config = (
        {"registry_type": "sql", "path": registry, "cache_ttl_seconds": 60}
        if "://" in registry
        else {"path": registry, "cache_ttl_seconds": 0}
    )
    return {
        "project": PROJECT,
        "provider": "local",
        "registry": registry_config,
        "online_store": online,
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": 3,
    }


def settings_from_environment(home: Path) -> dict:
    """FEAST_REGISTRY and FEAST_ONLINE_STORE, else the embedded files under `home`/feast."""
    return {
        "registry": os.environ.get("FEAST_REGISTRY") or str(home / "feast" / "registry.db"),
        "online_store": os.environ.get("FEAST_ONLINE_STORE") or "sqlite",
        "sqlite_path": str(home / "feast" / "online_store.db"),
    }


def open_feature_store(**settings) -> "FeatureStore":
    """A FeatureStore of `feast_settings(**settings)` over feature_repo/."""
    from feast import FeatureStore, RepoConfig

    config = RepoConfig(**feast_settings(**settings), repo_path=FEATURE_REPO)
    return FeatureStore(config=config)
