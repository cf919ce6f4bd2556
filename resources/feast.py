"""Feast per environment: the same definitions (feature_repo/) on SQLite or Redis."""

import contextlib
import importlib
import sys
import threading
from typing import TYPE_CHECKING

import dagster as dg

from features.store import FEATURE_REPO, feast_settings, open_feature_store

if TYPE_CHECKING:
    from feast import FeatureStore, RepoConfig
    from feast.repo_contents import RepoContents

_PARSE_LOCK = threading.Lock()


class FeastResource(dg.ConfigurableResource):
    """Builds Feast's RepoConfig in code. `online_store` is `sqlite` (file at `sqlite_path`) or a
    `redis://host:port` URL; `registry` is a file path or a SQL URL (postgresql://...)."""

    registry: str
    online_store: str = "sqlite"
    sqlite_path: str = ""

    def settings(self) -> dict:
        """The feature_store.yaml content of this environment, as a dict."""
        return feast_settings(self.registry, self.online_store, self.sqlite_path)

    def repo_config(self) -> "RepoConfig":
        from feast import RepoConfig

        return RepoConfig(**self.settings(), repo_path=FEATURE_REPO)

    def store(self) -> "FeatureStore":
        return open_feature_store(
            registry=self.registry, online_store=self.online_store, sqlite_path=self.sqlite_path
        )

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
