"""Feast's file (dask) offline store, with Delta sources read through their Delta log.

Feast 0.67's dask store reads every source with `dd.read_parquet(<folder>)`, `DeltaFormat` or
not: every parquet file of a Delta table's folder, the files an overwrite replaced included, so
a table that keeps its history (for time travel, and for the audit before a partition is
published) would read as duplicated, stale rows. Named in the feature store's configuration
(`type: features.delta_offline_store.DeltaFileOfflineStore`), this store reads a `DeltaFormat`
source as its current version and anything else as Feast does; the rest is Feast's own store.
Importing the module is what installs the reader, in the one module function the store's
retrieval and materialization read through (they are evaluated lazily, after any call of
ours returns, so the reader cannot be scoped to a call)."""

from typing import Literal

import dask.dataframe as dd
from feast.data_format import DeltaFormat
from feast.infra.offline_stores import dask as feast_dask
from feast.infra.offline_stores.file_source import FileSource

from features.store import DELTA_OFFLINE_STORE

ROWS_PER_PARTITION = 1_000_000
_read_as_parquet = feast_dask._read_datasource


def read_source(data_source, repo_path) -> dd.DataFrame:
    """A source as a dask frame: a Delta table's current version, or Feast's own read."""
    if not isinstance(data_source.file_options.file_format, DeltaFormat):
        return _read_as_parquet(data_source, repo_path)
    from deltalake import DeltaTable

    uri = FileSource.get_uri_for_file_path(repo_path=repo_path, uri=data_source.file_options.uri)
    frame = DeltaTable(str(uri)).to_pyarrow_table().to_pandas()
    return dd.from_pandas(frame, chunksize=ROWS_PER_PARTITION)


feast_dask._read_datasource = read_source


class DeltaFileOfflineStoreConfig(feast_dask.DaskOfflineStoreConfig):
    type: Literal[DELTA_OFFLINE_STORE] = DELTA_OFFLINE_STORE  # type: ignore[valid-type]


class DeltaFileOfflineStore(feast_dask.DaskOfflineStore):
    """Feast's file offline store, reading Delta sources at their current version."""
