"""Feast per environment: the same definitions (feature_repo/) on SQLite or Redis."""

import contextlib
import importlib
import sys
import threading
from typing import TYPE_CHECKING

import dagster as dg

from resources.settings import REPO_ROOT

if TYPE_CHECKING:
    from feast import FeatureStore, RepoConfig
    from feast.repo_contents import RepoContents

FEATURE_REPO = REPO_ROOT / "feature_repo"
PROJECT = "fraud_platform"
_PARSE_LOCK = threading.Lock()


class FeastResource(dg.ConfigurableResource):
    """Builds Feast's RepoConfig in code. `online_store` is `sqlite` (file at `sqlite_path`) or a
    `redis://host:port` URL; `registry` is a file path or a SQL URL (postgresql://...)."""

    registry: str
    online_store: str = "sqlite"
    sqlite_path: str = ""

    def repo_config(self) -> "RepoConfig":
        from feast import RepoConfig

        if self.online_store == "sqlite":
            online = {"type": "sqlite", "path": self.sqlite_path}
        elif self.online_store.startswith("redis://"):
            online = {
                "type": "redis",
                "connection_string": self.online_store.removeprefix("redis://"),
            }
        else:
            raise ValueError(
                f"FEAST_ONLINE_STORE={self.online_store!r}: use 'sqlite' or 'redis://host:port'"
            )
        registry = (
            {"registry_type": "sql", "path": self.registry, "cache_ttl_seconds": 60}
            if "://" in self.registry
            else {"path": self.registry, "cache_ttl_seconds": 0}
        )
        return RepoConfig(
            project=PROJECT,
            provider="local",
            registry=registry,
            online_store=online,
            offline_store={"type": "file"},
            entity_key_serialization_version=3,
            repo_path=FEATURE_REPO,
        )

    def store(self) -> "FeatureStore":
        from feast import FeatureStore

        return FeatureStore(config=self.repo_config())

    def definitions(self) -> "RepoContents":
        """The objects of feature_repo/, parsed as `feast apply` does, freshly imported so that
        source paths follow the current FRAUD_HOME / LAKEHOUSE_URI."""
        from feast.repo_operations import get_repo_files, parse_repo

        with _PARSE_LOCK, contextlib.chdir(FEATURE_REPO):
            for path in get_repo_files(FEATURE_REPO):
                sys.modules.pop(path.stem, None)
            sys.path.insert(0, str(FEATURE_REPO))
            try:
                importlib.invalidate_caches()
                return parse_repo(FEATURE_REPO)
            finally:
                sys.path.remove(str(FEATURE_REPO))
