"""The offline store the feature store's configuration names: point-in-time joins in DuckDB over
Delta sources, behind Feast's own API.

`get_historical_features` (the training set, the scores of closed days, `feast` itself) joins each
feature view with one DuckDB `ASOF LEFT JOIN` per view over the source's current Delta version: the
newest source row of the entity at or before the row's time, no older than the view's TTL, the
newest `created_timestamp` first among rows of one time; NULL where none. Feast 0.67's file (dask)
store joins each entity's whole history before filtering by time, which grows with the days kept.

Materialization (`pull_latest_from_table_or_query`, `pull_all_from_table_or_query`) and retrieval
without an entity frame are Feast's file store, whose one reader is replaced here so that a
`DeltaFormat` source is read as its current version: Feast 0.67 reads every parquet file of the
table's folder, the files an overwrite replaced included (duplicated, stale rows in a table that
keeps its history for time travel). Importing the module installs that reader: the file store's
retrieval is evaluated lazily, after any call of ours returns, so it cannot be scoped to a call."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Literal

import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset
from feast.data_format import DeltaFormat
from feast.infra.offline_stores import dask as feast_dask
from feast.infra.offline_stores.file_source import FileSource, SavedDatasetFileStorage
from feast.infra.offline_stores.offline_store import RetrievalJob, RetrievalMetadata
from feast.utils import (
    _get_requested_feature_views_to_features_dict,
    _get_requested_on_demand_feature_views,
)

from features.store import DELTA_OFFLINE_STORE
from lakehouse.delta import PARTITION_COLUMN

ROWS_PER_PARTITION = 1_000_000
EVENT_TIMESTAMP = "event_timestamp"
_read_as_parquet = feast_dask._read_datasource


def _source_uri(data_source, repo_path) -> str:
    return str(FileSource.get_uri_for_file_path(repo_path=repo_path, uri=data_source.path))


def read_source(data_source, repo_path) -> dd.DataFrame:
    """A source as a dask frame: a Delta table's current version, or Feast's own read."""
    if not isinstance(data_source.file_options.file_format, DeltaFormat):
        return _read_as_parquet(data_source, repo_path)
    from deltalake import DeltaTable

    frame = DeltaTable(_source_uri(data_source, repo_path)).to_pyarrow_table().to_pandas()
    return dd.from_pandas(frame, chunksize=ROWS_PER_PARTITION)


feast_dask._read_datasource = read_source


class DeltaOfflineStoreConfig(feast_dask.DaskOfflineStoreConfig):
    type: Literal[DELTA_OFFLINE_STORE] = DELTA_OFFLINE_STORE  # type: ignore[valid-type]


class DeltaOfflineStore(feast_dask.DaskOfflineStore):
    """Point-in-time joins in DuckDB over Delta sources; the rest is Feast's file store."""

    # Feast's own file-store retrieval, kept callable as the reference the joins are checked on.
    file_store_historical_features = staticmethod(
        feast_dask.DaskOfflineStore.get_historical_features
    )

    @staticmethod
    def get_historical_features(
        config,
        feature_views,
        feature_refs,
        entity_df,
        registry,
        project,
        full_feature_names=False,
        **kwargs,
    ) -> RetrievalJob:
        if entity_df is None:  # a snapshot of every entity: Feast's own way
            return feast_dask.DaskOfflineStore.get_historical_features(
                config, feature_views, feature_refs, entity_df, registry, project,
                full_feature_names, **kwargs,
            )  # fmt: skip
        if not isinstance(entity_df, pd.DataFrame):
            raise ValueError(
                f"entity_df must be a pandas DataFrame (or None), not {type(entity_df).__name__}"
            )
        on_demand = _get_requested_on_demand_feature_views(feature_refs, project, registry)
        per_view, _ = _get_requested_feature_views_to_features_dict(
            feature_refs, feature_views, on_demand
        )
        rows = _entity_rows(entity_df)
        stamps = rows.column(EVENT_TIMESTAMP)
        metadata = RetrievalMetadata(
            features=feature_refs,
            keys=[c for c in entity_df.columns if c != EVENT_TIMESTAMP],
            min_event_timestamp=pc.min(stamps).as_py(),
            max_event_timestamp=pc.max(stamps).as_py(),
        )

        def retrieve() -> pa.Table:
            joined = rows
            for view, features in per_view.items():
                values = as_of_join(rows, view, features, config.repo_path, full_feature_names)
                for name in values.column_names:
                    joined = joined.append_column(name, values.column(name))
            return joined

        return DeltaRetrievalJob(retrieve, full_feature_names, on_demand, metadata)


def _entity_rows(entity_df: pd.DataFrame) -> pa.Table:
    """The entity frame as Arrow, its event time as UTC microseconds (naive times are UTC)."""
    if EVENT_TIMESTAMP not in entity_df.columns:
        raise ValueError(f"entity_df has no {EVENT_TIMESTAMP!r} column (the rows' times)")
    stamps = pd.to_datetime(entity_df[EVENT_TIMESTAMP], utc=True).astype("datetime64[us, UTC]")
    return pa.Table.from_pandas(entity_df.assign(**{EVENT_TIMESTAMP: stamps}), preserve_index=False)


def _sql_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def as_of_join(
    rows: pa.Table, view, features: list[str], repo_path, full_feature_names: bool
) -> pa.Table:
    """`features` of `view` for each of `rows` (in their order), by Feast's point-in-time rule,
    as one DuckDB as-of join over the view's source."""
    import duckdb
    from deltalake import DeltaTable

    source = view.batch_source
    renamed = {v: k for k, v in (source.field_mapping or {}).items()}  # view name -> source's

    def column(name: str) -> str:
        return _sql_name(renamed.get(name, name))

    entity_keys = [c.name for c in view.entity_columns]
    row_keys = [view.projection.join_key_map.get(k, k) for k in entity_keys]
    prefix = f"{view.projection.name_to_use()}__" if full_feature_names else ""
    stamp, created = source.timestamp_field, source.created_timestamp_column

    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        numbered = rows.select([*row_keys, EVENT_TIMESTAMP])
        con.register("entity_rows", numbered.append_column("_row", pa.array(range(len(rows)))))
        if isinstance(source.file_options.file_format, DeltaFormat):
            table = DeltaTable(_source_uri(source, repo_path)).to_pyarrow_dataset()
        else:
            table = _read_as_parquet(source, repo_path).compute()
        con.register("source_table", table)
        names = table.schema.names if isinstance(table, pa.dataset.Dataset) else list(table)
        window = _source_window(numbered[EVENT_TIMESTAMP], view.ttl, column(stamp), names)
        keys = ", ".join(f"{column(k)} AS k{i}" for i, k in enumerate(entity_keys))
        values = ", ".join(f"{column(f)} AS v{i}" for i, f in enumerate(features))
        newest = (
            f"QUALIFY row_number() OVER (PARTITION BY {', '.join(column(k) for k in entity_keys)}, "
            f"{column(stamp)} ORDER BY {column(created)} DESC) = 1"
            if created
            else ""
        )
        fresh = (
            f"f._at >= e.{EVENT_TIMESTAMP} - to_microseconds({int(view.ttl.total_seconds() * 1e6)})"
            if view.ttl and view.ttl.total_seconds()
            else "true"
        )
        on = " AND ".join(f"e.{_sql_name(k)} = f.k{i}" for i, k in enumerate(row_keys))
        picked = ", ".join(
            f"CASE WHEN {fresh} THEN f.v{i} END AS {_sql_name(prefix + f)}"
            for i, f in enumerate(features)
        )
        return con.sql(f"""
            WITH source AS (
                SELECT {keys}, {column(stamp)} AS _at, {values}
                FROM source_table
                WHERE {window}
                {newest}
            )
            SELECT {picked}
            FROM entity_rows AS e ASOF LEFT JOIN source AS f
                ON {on} AND e.{EVENT_TIMESTAMP} >= f._at
            ORDER BY e._row
        """).to_arrow_table()  # fmt: skip


def _source_window(times: pa.ChunkedArray, ttl, stamp: str, source_columns: list[str]) -> str:
    """The SQL condition on a source's rows that a join of rows at `times` can pick: from the
    earliest time less the TTL (an older row is stale for every row) to the latest; on a source
    with the lakehouse's `day` column (the day of the row's time, or the day before for a
    daily row stamped at its end), with a day's margin, so that a chunk of rows reads only its
    days' partitions."""
    bounds = pc.min_max(times)
    first, last = bounds["min"].as_py(), bounds["max"].as_py()
    if first is None:
        return "false"
    conditions = [f"{stamp} <= '{last.isoformat()}'::TIMESTAMPTZ"]
    oldest = first - ttl if ttl and ttl.total_seconds() else None
    if oldest is not None:
        conditions.append(f"{stamp} >= '{oldest.isoformat()}'::TIMESTAMPTZ")
    if PARTITION_COLUMN in source_columns:  # a day's rows may be stamped up to its end
        conditions.append(f"{PARTITION_COLUMN} <= '{last.date() + dt.timedelta(days=1)}'")
        if oldest is not None:
            conditions.append(f"{PARTITION_COLUMN} >= '{oldest.date() - dt.timedelta(days=1)}'")
    return " AND ".join(conditions)


class DeltaRetrievalJob(RetrievalJob):
    """A retrieval evaluated when its result is asked for (`to_df`, `to_arrow`)."""

    def __init__(
        self,
        retrieve: Callable[[], pa.Table],
        full_feature_names: bool,
        on_demand_feature_views,
        metadata: RetrievalMetadata,
    ):
        self._retrieve, self._full_feature_names = retrieve, full_feature_names
        self._on_demand_feature_views, self._metadata = on_demand_feature_views, metadata

    @property
    def full_feature_names(self) -> bool:
        return self._full_feature_names

    @property
    def on_demand_feature_views(self):
        return self._on_demand_feature_views

    @property
    def metadata(self) -> RetrievalMetadata:
        return self._metadata

    def _to_arrow_internal(self, timeout: int | None = None) -> pa.Table:
        return self._retrieve()

    def _to_df_internal(self, timeout: int | None = None) -> pd.DataFrame:
        return self._retrieve().to_pandas()

    def persist(self, storage, allow_overwrite: bool = False, timeout: int | None = None):
        """Write the result as one parquet file (Feast's saved datasets)."""
        import os

        import pyarrow.parquet as pq

        if not isinstance(storage, SavedDatasetFileStorage):
            raise ValueError("this store saves datasets to files only (SavedDatasetFileStorage)")
        path = storage.file_options.uri
        if os.path.exists(path) and not allow_overwrite:
            raise FileExistsError(f"{path} exists (allow_overwrite=False)")
        pq.write_table(self.to_arrow(), path)
