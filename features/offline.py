"""Point-in-time features from the feature views' offline sources: each row's features as they
were known at its own transaction time, by Feast's rule. The training set is joined this way, and
so are the scores of closed days, so a model is scored on exactly what it was trained on."""

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np

from features.lookup import Rows
from features.views import fill_missing, service_views

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

# Velocity describes the card's or customer's activity before the transaction: the value pushed
# for the transaction itself (which counts it) must not be joined to it.
JUST_BEFORE = dt.timedelta(microseconds=1)


def joined_at(view) -> dt.timedelta:
    """How long before a row's transaction time a view's features must be known: just before
    for a pushed view (its value at the transaction's time counts the transaction)."""
    from feast import PushSource

    return JUST_BEFORE if isinstance(view.stream_source, PushSource) else dt.timedelta(0)


def source_keys(view) -> "pd.DataFrame":
    """Every entity (one column per join key) a view's Delta source has rows for."""
    from lakehouse.delta import ALL_DAYS, read_days

    keys = view.join_keys
    table = read_days(view.batch_source.path, *ALL_DAYS, columns=keys)
    return table.group_by(keys).aggregate([]).to_pandas()


def file_store_features(store: "FeatureStore", entity_df, views) -> "pd.DataFrame":
    """Feast's file (dask) store's own point-in-time retrieval of `views` for every row of
    `entity_df` (pandas, with `event_timestamp`), named `<view>__<feature>`; NaN where none was
    known in time: the independent reference the DuckDB joins are checked on (the training
    set's check recomputes a sample of its rows with it).

    Feast 0.67's file store fails when an entity key is absent from a source and silently drops
    rows with no match within the TTL, so each view is asked only for the (key, time) pairs its
    source knows, and the answers are merged back onto every row."""
    import pandas as pd

    from features.delta_offline_store import DeltaOfflineStore

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
        answer = DeltaOfflineStore.file_store_historical_features(
            config=store.config,
            feature_views=[view],
            feature_refs=[f"{view.name}:{f.name}" for f in view.features],
            entity_df=asked,
            registry=store.registry,
            project=store.project,
            full_feature_names=True,
        ).to_df()
        answer = answer.astype({stamp: "datetime64[us, UTC]"})[[*keys, stamp, *columns]]
        out = out.merge(answer, on=[*keys, stamp], how="left")
    return out.sort_values("_row").drop(columns="_row").reset_index(drop=True)


def point_in_time_join(store: "FeatureStore", entities: "pd.DataFrame", views) -> "pd.DataFrame":
    """`entities` with every view's features as known at (or just before) each row's time,
    named `<view>__<feature>`, NaN where none was known: Feast's `get_historical_features`
    through the configured offline store (DuckDB as-of joins over the Delta sources)."""
    joined = entities
    for view in views:
        at = entities[[*view.join_keys, "event_timestamp"]]
        at = at.assign(event_timestamp=at.event_timestamp - joined_at(view))
        features = store.get_historical_features(
            entity_df=at,
            features=[f"{view.name}:{f.name}" for f in view.features],
            full_feature_names=True,
        ).to_arrow()
        named = [f"{view.name}__{f.name}" for f in view.features]
        joined = joined.assign(**{c: features.column(c).to_numpy(zero_copy_only=False)
                                  for c in named})  # fmt: skip
    return joined


class PointInTimeFeatures:
    """A feature service's features for scoring rows, each row as of its own transaction time,
    read from the views' offline sources: the values, defaults and flags the training set holds. It
    answers `lookup` as `OnlineFeatures` does, so the same scorer runs on either (unguarded: a
    failure raises, there are no defaults to degrade to)."""

    def __init__(self, store: "FeatureStore", service: str):
        self._store, self.views = store, service_views(store, service)
        self._feature_views = [store.get_feature_view(spec.name) for spec in self.views]
        self._keys = sorted({k for spec in self.views for k in spec.join_keys})

    def holds_any(self) -> bool:
        """True: an empty online store is no concern of a point-in-time read (the offline
        sources answer, or the read fails)."""
        return True

    def lookup(self, rows: Rows, as_of: dt.datetime | None = None) -> dict[str, np.ndarray]:
        """Features of `rows` (column arrays or a DataFrame with the join keys and
        `event_timestamp`) at each row's own time; `as_of` must be None (a row's time decides)."""
        import pandas as pd

        if as_of is not None:
            raise ValueError("point-in-time features are read at each row's own time, not as_of")
        entities = pd.DataFrame({k: rows[k] for k in [*self._keys, "event_timestamp"]})
        joined = point_in_time_join(self._store, entities, self._feature_views)
        joined = fill_missing(joined, self.views)
        return {c: joined[c].to_numpy() for spec in self.views for c in [*spec.columns, spec.flag]}
