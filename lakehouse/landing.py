"""The landing format: daily files per feed, written whole (a reader never sees half a file),
and read into bronze rows with every field kept as text, nothing parsed, nothing dropped."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

# Bookkeeping columns bronze adds to the raw fields.
SOURCE_FILE = "_source_file"
SOURCE_LINE = "_source_line"
SCHEMA_ERROR = "_schema_error"
RAW_RECORD = "_raw_record"
INGESTED_AT = "_ingested_at"


@dataclass(frozen=True)
class LandingSource:
    """One upstream feed: where its daily files land and which fields a record must have."""

    table: str
    folder: str
    suffix: str
    fields: tuple[str, ...]

    def files_for_day(self, landing: Path, day: dt.date) -> list[Path]:
        """Files of `day`, e.g. transactions_2026-01-01.csv and transactions_2026-01-01_2.csv."""
        folder = landing / self.folder
        return sorted(folder.glob(f"{self.folder}_{day.isoformat()}*{self.suffix}"))

    def path_for_day(self, landing: Path, day: dt.date, tag: str = "") -> Path:
        """Where a file of `day` lands; `tag` tells several files of one day apart."""
        name = f"{self.folder}_{day.isoformat()}{'_' + tag if tag else ''}{self.suffix}"
        return landing / self.folder / name

    def write(self, path: Path, rows: Sequence[Sequence[str] | str]) -> None:
        """Write one landing file of text rows (CSV with a header, or one JSON object per line;
        a row given as a string is written as it is, a row longer than the fields keeps its
        extra value under `unexpected`)."""
        if self.suffix == ".csv":

            def write(handle):
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(self.fields)
                writer.writerows(rows)
        else:

            def write(handle):
                for row in rows:
                    if isinstance(row, str):
                        handle.write(row + "\n")
                        continue
                    record = dict(zip(self.fields, row, strict=False))
                    if len(row) > len(self.fields):
                        record["unexpected"] = row[-1]
                    handle.write(json.dumps(record, separators=(",", ":")) + "\n")

        _write_atomically(path, write)

    def day_of(self, path: Path) -> dt.date | None:
        """The day a landing file belongs to, from its name; None for a foreign file."""
        stem = path.name.removesuffix(self.suffix)
        prefix = f"{self.folder}_"
        if not stem.startswith(prefix) or not path.name.endswith(self.suffix):
            return None
        try:
            return dt.date.fromisoformat(stem[len(prefix) : len(prefix) + 10])
        except ValueError:
            return None

    def bronze_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(name, pa.string()) for name in self.fields]
            + [
                pa.field(SOURCE_FILE, pa.string()),
                pa.field(SOURCE_LINE, pa.int64()),
                pa.field(SCHEMA_ERROR, pa.string()),
                pa.field(RAW_RECORD, pa.string()),
                pa.field(INGESTED_AT, pa.timestamp("us", tz="UTC")),
                pa.field("day", pa.date32()),
            ]
        )


TRANSACTIONS = LandingSource(
    table="transactions",
    folder="transactions",
    suffix=".csv",
    fields=(
        "transaction_id",
        "timestamp",
        "customer_id",
        "card_id",
        "merchant_id",
        "merchant_category",
        "merchant_country",
        "device_id",
        "channel",
        "amount",
        "currency",
    ),
)
FRAUD_REPORTS = LandingSource(
    table="fraud_reports",
    folder="fraud_reports",
    suffix=".jsonl",
    fields=("report_id", "transaction_id", "card_id", "reported_at", "reason_code"),
)
SOURCES = {source.table: source for source in (TRANSACTIONS, FRAUD_REPORTS)}


def _write_atomically(path: Path, write: Callable) -> None:
    """Write to a temporary name, then rename, so a sensor never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        write(handle)
    os.replace(tmp, path)


@dataclass(frozen=True)
class FileRejection:
    """A whole file refused at the door, with its lines kept for quarantine."""

    path: Path
    reason: str
    lines: list[str]


@dataclass(frozen=True)
class LandingRead:
    rows: pa.Table | None
    rejection: FileRejection | None


def read_landing_file(source: LandingSource, path: Path, day: dt.date) -> LandingRead:
    """Read one landing file; a CSV whose header differs from the feed's fields is rejected."""
    if source.suffix == ".csv":
        return _read_csv(source, path, day)
    return LandingRead(rows=_read_jsonl(source, path, day), rejection=None)


def _stamp(source: LandingSource, columns: dict, path: Path, day: dt.date) -> pa.Table:
    n = len(columns[SOURCE_LINE])
    schema = source.bronze_schema()
    columns[SOURCE_FILE] = pa.repeat(path.name, n)
    columns[INGESTED_AT] = pa.repeat(
        pa.scalar(dt.datetime.now(dt.UTC), schema.field(INGESTED_AT).type), n
    )
    columns["day"] = pa.repeat(pa.scalar(day, pa.date32()), n)
    return pa.table({f.name: columns[f.name] for f in schema}, schema=schema)


def _read_csv(source: LandingSource, path: Path, day: dt.date) -> LandingRead:
    import pyarrow.csv as pacsv

    text = path.read_text(encoding="utf-8", errors="replace")
    header_line, _, _ = text.partition("\n")
    header = next(csv.reader([header_line]), [])
    missing = [f for f in source.fields if f not in header]
    unexpected = [h for h in header if h not in source.fields]
    if missing or unexpected or len(header) != len(set(header)):
        reason = (
            f"unexpected file schema: missing columns {missing}, unexpected columns {unexpected}"
            if missing or unexpected
            else f"unexpected file schema: duplicated columns in header {header}"
        )
        return LandingRead(None, FileRejection(path, reason, text.splitlines()[1:]))

    broken: list[tuple[int, str, str]] = []

    def keep_broken(row) -> str:
        error = f"expected {row.expected_columns} fields, got {row.actual_columns}"
        broken.append((row.number, row.text, error))
        return "skip"

    table = pacsv.read_csv(
        io.BytesIO(text.encode("utf-8")),
        read_options=pacsv.ReadOptions(use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=keep_broken),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    # Lines of good rows are the lines left once the broken ones are taken out (header = 1).
    broken_lines = np.array([b[0] for b in broken], dtype=np.int64)
    all_lines = np.arange(2, table.num_rows + len(broken) + 2)
    good_lines = all_lines[~np.isin(all_lines, broken_lines)]
    nulls = pa.nulls(len(broken), pa.string())
    columns = {
        f: pa.concat_arrays([table.column(f).combine_chunks(), nulls]) for f in source.fields
    }
    columns[SOURCE_LINE] = pa.array(np.concatenate([good_lines, broken_lines]))
    columns[SCHEMA_ERROR] = pa.concat_arrays(
        [pa.nulls(table.num_rows, pa.string()), pa.array([b[2] for b in broken], pa.string())]
    )
    columns[RAW_RECORD] = pa.concat_arrays(
        [pa.nulls(table.num_rows, pa.string()), pa.array([b[1] for b in broken], pa.string())]
    )
    return LandingRead(rows=_stamp(source, columns, path, day), rejection=None)


def _read_jsonl(source: LandingSource, path: Path, day: dt.date) -> pa.Table:
    columns: dict[str, list] = {f: [] for f in (*source.fields, SOURCE_LINE, SCHEMA_ERROR)}
    columns[RAW_RECORD] = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            record, error = _parse_record(line, source.fields)
            for f in source.fields:
                value = record.get(f)
                columns[f].append(None if value is None else str(value))
            columns[SOURCE_LINE].append(line_number)
            columns[SCHEMA_ERROR].append(error)
            columns[RAW_RECORD].append(line if error else None)
    return _stamp(source, columns, path, day)


def _parse_record(line: str, fields: tuple[str, ...]) -> tuple[dict, str | None]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return {}, f"invalid JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(record, dict):
        return {}, f"expected a JSON object, got {type(record).__name__}"
    missing = [f for f in fields if f not in record]
    unexpected = [k for k in record if k not in fields]
    if missing or unexpected:
        return record, f"missing fields {missing}, unexpected fields {unexpected}"
    return record, None
