"""The lakehouse resource: landing folder and Delta tables per layer, local or object store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow as pa

from lakehouse import delta


class LakehouseResource(dg.ConfigurableResource):
    """Delta tables at `<root>/<layer>/<table>`; `root` is a folder or an object-store URI."""

    root: str
    landing: str
    storage_options: dict[str, str] = {}  # noqa: RUF012 - pydantic copies field defaults
    # How long replaced rows stay readable by time travel (FRAUD_DELTA_RETENTION_DAYS).
    retention_days: int = 7

    def uri(self, layer: str, table: str) -> str:
        return f"{self.root.rstrip('/')}/{layer}/{table}"

    @property
    def landing_path(self) -> Path:
        return Path(self.landing)

    def _options(self) -> dict[str, str] | None:
        return dict(self.storage_options) or None

    def exists(self, layer: str, table: str) -> bool:
        return delta.table_exists(self.uri(layer, table), self._options())

    def version(self, layer: str, table: str) -> int | None:
        return delta.table_version(self.uri(layer, table), self._options())

    def commit_timestamp(self, layer: str, table: str) -> int:
        return delta.commit_timestamp(self.uri(layer, table), self._options())

    def read(self, layer: str, table: str, start: dt.date, end: dt.date, **kwargs) -> pa.Table:
        return delta.read_days(self.uri(layer, table), start, end, self._options(), **kwargs)

    def scan(
        self, layer: str, table: str, start: dt.date, end: dt.date, chunk_rows: int, **kwargs
    ) -> Iterator[pa.Table]:
        """`read` in tables of `chunk_rows` rows, a few files at a time."""
        return delta.scan_days(
            self.uri(layer, table), start, end, chunk_rows, self._options(), **kwargs
        )

    def expire_history(self, layer: str, table: str) -> int:
        """Delete what left the table over `retention_days` ago; how many files."""
        retention = dt.timedelta(days=self.retention_days)
        return delta.expire_history(self.uri(layer, table), retention, self._options())

    def overwrite(
        self,
        layer: str,
        table: str,
        data: pa.Table,
        start: dt.date,
        end: dt.date,
        extra_predicate: str | None = None,
        evolve_schema: bool = False,
    ) -> delta.DeltaWrite:
        return delta.overwrite_days(
            self.uri(layer, table),
            data,
            start,
            end,
            self._options(),
            extra_predicate,
            evolve_schema,
        )

    def overwrite_streamed(
        self,
        layer: str,
        table: str,
        batches: Iterator[pa.RecordBatch],
        start: dt.date,
        end: dt.date,
    ) -> delta.DeltaWrite:
        return delta.overwrite_days_streamed(
            self.uri(layer, table), batches, start, end, self._options()
        )

    def append(
        self, layer: str, table: str, data: pa.Table, evolve_schema: bool = False
    ) -> delta.DeltaWrite:
        return delta.append_rows(self.uri(layer, table), data, self._options(), evolve_schema)
