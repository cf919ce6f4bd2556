"""An external transactions table (CSV or Parquet) and its mapping to landing files and fraud
reports. Rows are placed by their UTC day; what cannot be placed (a timestamp that does not
parse, a day outside the partitions) lands in one `_unplaced` file that silver quarantines with
the reason; reports of transactions the data does not hold are set aside in `rejected/`."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ingest.mapping import (
    DEFAULT_CURRENCY,
    DEFAULT_REASON_CODE,
    FlaggedFrauds,
    ImportMapping,
    ReportsTable,
)
from lakehouse.landing import FRAUD_REPORTS, TRANSACTIONS
from settings.env import partitions_start

TRUE_FLAGS = {"1", "1.0", "true", "t", "yes", "y"}


class ImportRefused(ValueError):
    """Nothing was written: the source does not fit the mapping or the partitions."""


@dataclass
class ImportSummary:
    rows: int = 0
    placed: int = 0
    first_day: dt.date | None = None
    last_day: dt.date | None = None
    day_files: int = 0
    unplaced: Counter = field(default_factory=Counter)  # reason -> rows
    duplicate_ids: int = 0
    absent_fields: list[str] = field(default_factory=list)
    reports: int = 0
    report_files: int = 0
    rejected_reports: Counter = field(default_factory=Counter)  # reason -> reports
    rejected_file: Path | None = None

    def lines(self) -> list[str]:
        """What the import did, for a person: counts, and what silver will do with the rest."""
        out = [
            f"{self.rows:,} rows read; {self.placed:,} placed in {self.day_files} daily files "
            f"({self.first_day} .. {self.last_day})",
        ]
        for reason, count in sorted(self.unplaced.items()):
            out.append(f"{count:,} rows not placed ({reason}): silver quarantines them")
        if self.duplicate_ids:
            out.append(f"{self.duplicate_ids:,} duplicate transaction ids: silver keeps the first")
        if self.absent_fields:
            out.append(f"absent, features on them unavailable: {', '.join(self.absent_fields)}")
        out.append(f"{self.reports:,} fraud reports in {self.report_files} daily files")
        for reason, count in sorted(self.rejected_reports.items()):
            out.append(f"{count:,} fraud reports set aside ({reason})")
        if self.rejected_file:
            out.append(f"set-aside reports, with their reason: {self.rejected_file}")
        return out


def read_table(path: Path) -> pd.DataFrame:
    """A CSV (every column as text) or Parquet file."""
    if not path.exists():
        raise ImportRefused(f"source file not found: {path}")
    if path.suffix.lower() in {".parquet", ".pq"}:
        return pd.read_parquet(path)
    if path.suffix.lower() in {".csv", ".txt"}:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    raise ImportRefused(f"{path}: expected a .csv or .parquet file")


def import_table(
    mapping: ImportMapping,
    landing: Path,
    source: pd.DataFrame | None = None,
    reports: pd.DataFrame | None = None,
) -> ImportSummary:
    """Write `mapping`'s source (or `source`) as landing files under `landing`. Re-running the
    same import rewrites its own files (named after the mapping) and no one else's."""
    frame = read_table(mapping.transactions) if source is None else source
    missing = sorted({c for c in mapping.columns.values() if c not in frame.columns})
    if missing:
        raise ImportRefused(
            f"{mapping.transactions.name} lacks column(s) {missing} named in the mapping; "
            f"it has {list(frame.columns)}"
        )
    summary = ImportSummary(rows=len(frame), absent_fields=mapping.absent())
    timestamps = utc_timestamps(frame[mapping.columns["timestamp"]], mapping.timezone)
    text = {f: _landing_text(frame, mapping, f) for f in TRANSACTIONS.fields}
    text["timestamp"] = np.where(timestamps.isna(), text["timestamp"], _iso(timestamps)).astype(
        object
    )
    days = timestamps.dt.date
    first, last = _day_range(days)
    placed = days.notna() & (days >= first) & (days <= last)
    summary.unplaced["unparseable timestamp"] = int(timestamps.isna().sum())
    summary.unplaced["before the partitions' start"] = int((days.notna() & (days < first)).sum())
    summary.unplaced = +summary.unplaced  # drop zero counts
    rows = pd.DataFrame(text)
    summary.duplicate_ids = int(rows.loc[placed, "transaction_id"].duplicated().sum())
    for day, day_rows in rows[placed].groupby(days[placed], sort=True):
        TRANSACTIONS.write(TRANSACTIONS.path_for_day(landing, day, mapping.name), day_rows.values)
        summary.day_files += 1
    if (~placed).any():
        path = TRANSACTIONS.path_for_day(landing, first, f"{mapping.name}_unplaced")
        TRANSACTIONS.write(path, rows[~placed].values)
    summary.placed, summary.first_day, summary.last_day = int(placed.sum()), first, last
    report_rows, rejected = _report_rows(mapping, frame, rows, timestamps, placed, reports)
    _write_reports(report_rows, landing, mapping.name, summary)
    summary.rejected_reports = Counter(rejected["reason"].value_counts().to_dict())
    if not rejected.empty:
        summary.rejected_file = landing / "rejected" / f"{mapping.name}_fraud_reports.jsonl"
        _write_rejected(rejected, summary.rejected_file)
    return summary


def utc_timestamps(column: pd.Series, timezone: str) -> pd.Series:
    """Timestamps in UTC; ISO-8601 text or datetimes, naive ones in `timezone`; NaT where a
    value does not parse or does not exist in that zone (a clock change)."""
    if pd.api.types.is_numeric_dtype(column):
        raise ImportRefused(
            f"timestamp column {column.name!r} holds numbers; give ISO-8601 text or datetimes"
        )
    mixed = ImportRefused(
        f"timestamp column {column.name!r} mixes values with and without a UTC offset"
    )
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = column
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)  # pandas' word for mixed offsets
            try:
                parsed = pd.to_datetime(column.replace("", None), errors="coerce", format="ISO8601")
            except FutureWarning:
                raise mixed from None
    if parsed.dtype == object:
        raise mixed
    if parsed.dt.tz is None:
        parsed = parsed.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    return parsed.dt.tz_convert("UTC")


def _iso(timestamps: pd.Series) -> np.ndarray:
    return timestamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3].add("Z").to_numpy()


def _day_range(days: pd.Series) -> tuple[dt.date, dt.date]:
    """From the later of the partitions' start and the first day, to the last day."""
    known = days.dropna()
    if known.empty:
        raise ImportRefused("no timestamp of the source parses; nothing to place")
    start = partitions_start()
    if known.max() < start:
        raise ImportRefused(
            f"every transaction lies before the partitions' start {start}; "
            f"set FRAUD_PARTITIONS_START={known.min()} (and use it for Dagster too)"
        )
    return max(known.min(), start), known.max()


def _landing_text(frame: pd.DataFrame, mapping: ImportMapping, name: str) -> np.ndarray:
    """The landing field `name` as text: from its source column, its one value, or empty."""
    if name in mapping.columns:
        return _as_text(frame[mapping.columns[name]], money=name == "amount")
    value = mapping.values.get(name, DEFAULT_CURRENCY if name == "currency" else "")
    return np.full(len(frame), value, dtype=object)


def _as_text(column: pd.Series, money: bool = False) -> np.ndarray:
    """Text of a source column: amounts to the cent, whole floats without `.0`, nulls empty."""
    if pd.api.types.is_float_dtype(column):
        values = column.to_numpy(dtype=np.float64)
        if money:
            text = np.char.mod("%.2f", np.round(values, 2)).astype(object)
        elif np.all(np.isnan(values) | (values == np.round(values))):
            text = np.char.mod("%d", np.nan_to_num(values)).astype(object)
        else:
            text = column.astype(str).to_numpy(dtype=object)
        text[np.isnan(values)] = ""
        return text
    if pd.api.types.is_datetime64_any_dtype(column):
        return column.astype(str).where(column.notna(), "").to_numpy(dtype=object)
    return column.astype(object).where(column.notna(), "").astype(str).to_numpy(dtype=object)


def _report_rows(
    mapping: ImportMapping,
    frame: pd.DataFrame,
    rows: pd.DataFrame,
    timestamps: pd.Series,
    placed: pd.Series,
    reports: pd.DataFrame | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reports: report_id, transaction_id, card_id, reported_at in UTC, reason_code; the
    reports set aside, with a `reason`)."""
    spec = mapping.reports
    if spec is None:
        empty = pd.DataFrame(columns=[*FRAUD_REPORTS.fields, "reason"])
        return empty, empty
    if isinstance(spec, FlaggedFrauds):
        if spec.column not in frame.columns:
            raise ImportRefused(f"fraud flag column {spec.column!r} is not in the source")
        flagged = _flags(frame[spec.column])
        out = pd.DataFrame(
            {
                "report_id": "r" + rows.loc[flagged, "transaction_id"],
                "transaction_id": rows.loc[flagged, "transaction_id"],
                "card_id": rows.loc[flagged, "card_id"],
                "reported_at": timestamps[flagged] + pd.Timedelta(days=spec.delay_days),
                "reason_code": spec.reason_code,
                "reason": np.where(placed[flagged], "", "its transaction was not placed"),
            }
        )
        return _split_rejected(out)
    return _table_reports(spec, rows, reports)


def _split_rejected(reports: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    kept = reports["reason"] == ""
    return reports[kept].drop(columns="reason"), reports[~kept]


def _table_reports(
    spec: ReportsTable, rows: pd.DataFrame, reports: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    table = read_table(spec.path) if reports is None else reports
    missing = sorted({c for c in spec.columns.values() if c not in table.columns})
    if missing:
        raise ImportRefused(f"{spec.path.name} lacks column(s) {missing} named in the mapping")
    ids = _as_text(table[spec.columns["transaction_id"]])
    cards = rows.drop_duplicates("transaction_id").set_index("transaction_id")["card_id"]
    out = pd.DataFrame(
        {
            "report_id": (
                _as_text(table[spec.columns["report_id"]])
                if "report_id" in spec.columns
                else np.char.add("r", ids.astype(str)).astype(object)
            ),
            "transaction_id": ids,
            "card_id": (
                _as_text(table[spec.columns["card_id"]])
                if "card_id" in spec.columns
                else cards.reindex(ids).fillna("").to_numpy(dtype=object)
            ),
            "reported_at": utc_timestamps(table[spec.columns["reported_at"]], spec.timezone),
            "reason_code": (
                _as_text(table[spec.columns["reason_code"]])
                if "reason_code" in spec.columns
                else DEFAULT_REASON_CODE
            ),
        }
    )
    out["reason"] = np.select(
        [~out["transaction_id"].isin(cards.index), out["reported_at"].isna()],
        ["unknown transaction", "unparseable reported_at"],
        default="",
    )
    return _split_rejected(out)


def _flags(column: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return column.fillna(0).astype(float) != 0
    return column.astype(str).str.strip().str.lower().isin(TRUE_FLAGS)


def _write_reports(reports: pd.DataFrame, landing: Path, name: str, summary: ImportSummary):
    if reports.empty:
        return
    reports = reports.assign(
        day=reports["reported_at"].dt.date, reported_at=_iso(reports["reported_at"])
    ).sort_values("reported_at", kind="stable")
    for day, day_reports in reports.groupby("day", sort=True):
        FRAUD_REPORTS.write(
            FRAUD_REPORTS.path_for_day(landing, day, name),
            day_reports[list(FRAUD_REPORTS.fields)].values.tolist(),
        )
        summary.report_files += 1
    summary.reports = len(reports)


def _write_rejected(rejected: pd.DataFrame, path: Path) -> None:
    """One JSON object per set-aside report: its reason and its fields as imported."""
    path.parent.mkdir(parents=True, exist_ok=True)
    records = rejected.assign(reported_at=rejected["reported_at"].astype(str))
    with path.open("w", encoding="utf-8") as handle:
        for record in records.to_dict(orient="records"):
            handle.write(json.dumps(record, default=str) + "\n")
