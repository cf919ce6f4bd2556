"""Feast per environment: the same definitions (feature_repo/) on SQLite or Redis."""

import contextlib
import importlib
import sys
import threading
from typing import TYPE_CHECKING

import dagster as dg

from ml.feature_store import FEATURE_REPO, feast_settings, open_feature_store

if TYPE_CHECKING:
    import pandas as pd
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


def source_keys(view) -> "pd.DataFrame":
    """Every entity (one column per join key) a view's Delta source has rows for."""
    from lakehouse.delta import ALL_DAYS, read_days

    keys = view.join_keys
    table = read_days(view.batch_source.path, *ALL_DAYS, columns=keys)
    return table.group_by(keys).aggregate([]).to_pandas()


def historical_features(store: "FeatureStore", entity_df, views) -> "pd.DataFrame":
    """Point-in-time features of `views` for every row of `entity_df` (pandas, with
    `event_timestamp`), named `<view>__<feature>`; NaN where none was known in time.

    Feast 0.67's file (dask) offline store fails when an entity key is absent from a source and
    silently drops rows with no match within the TTL, so each view is asked only for the
    (key, time) pairs its source knows, and the answers are merged back onto every row."""
    import pandas as pd

    stamp = "event_timestamp"
    out = entity_df.assign(**{stamp: pd.to_datetime(entity_df[stamp], utc=True)})
    out = out.astype({stamp: "datetime64[us, UTC]"}).assign(_row=range(len(entity_df)))
    for view in views:
        keys = view.join_keys
        columns = [f"{view.name}__{f.name}" for f in view.features]
        known = source_keys(view)
        asked = out[[*keys, stamp]].drop_duplicates().merge(known, on=keys)
        if asked.empty:
            out = out.assign(**{c: float("nan") for c in columns})
            continue
        answer = store.get_historical_features(
            entity_df=asked,
            features=[f"{view.name}:{f.name}" for f in view.features],
            full_feature_names=True,
        ).to_df()
        answer = answer.astype({stamp: "datetime64[us, UTC]"})[[*keys, stamp, *columns]]
        out = out.merge(answer, on=[*keys, stamp], how="left")
    return out.sort_values("_row").drop(columns="_row").reset_index(drop=True)
