"""The column-mapping file of an import: which source column feeds each landing field, the
source's time zone, and where its fraud reports come from (a flag with a report delay, or a
table of reports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lakehouse.landing import FRAUD_REPORTS, TRANSACTIONS

# A transaction cannot be placed, typed or joined without these.
REQUIRED = ("transaction_id", "timestamp", "customer_id", "card_id", "merchant_id", "amount")
# A source may lack these: they land empty and the features built on them are unavailable.
OPTIONAL = ("merchant_category", "merchant_country", "device_id", "channel", "currency")
# Amounts without a currency are taken as dollars, the platform's unit.
DEFAULT_CURRENCY = "USD"
REPORT_REQUIRED = ("transaction_id", "reported_at")
DEFAULT_REASON_CODE = "fraud"


class MappingError(ValueError):
    """The mapping file cannot be used; the message says which entry and why."""


@dataclass(frozen=True)
class FlaggedFrauds:
    """Reports made from a fraud flag of the transactions: each flagged one is reported
    `delay_days` after it happened."""

    column: str
    delay_days: float
    reason_code: str = DEFAULT_REASON_CODE


@dataclass(frozen=True)
class ReportsTable:
    """Reports from a table of their own; `columns` maps report fields to its columns."""

    path: Path
    columns: dict[str, str]
    timezone: str


@dataclass(frozen=True)
class ImportMapping:
    name: str
    transactions: Path
    columns: dict[str, str]  # landing field -> source column
    values: dict[str, str] = field(default_factory=dict)  # landing field -> one value for all
    timezone: str = "UTC"
    reports: FlaggedFrauds | ReportsTable | None = None

    def absent(self) -> list[str]:
        """Optional fields the source does not have."""
        return [f for f in OPTIONAL if f not in self.columns and f not in self.values]


def load_mapping(path: Path) -> ImportMapping:
    """Read and check a mapping file; relative paths in it are relative to the file."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"cannot read the mapping {path}: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("transactions"), dict):
        raise MappingError(f"{path}: expected a `transactions:` section")
    txns = raw["transactions"]
    columns = _string_map(txns.get("columns"), "transactions.columns", TRANSACTIONS.fields)
    values = _string_map(txns.get("values"), "transactions.values", OPTIONAL)
    both = sorted(set(columns) & set(values))
    if both:
        raise MappingError(f"transactions: {both} given both as a column and as a value")
    missing = [f for f in REQUIRED if f not in columns]
    if missing:
        raise MappingError(f"transactions.columns lacks the required field(s) {missing}")
    return ImportMapping(
        name=str(raw.get("name") or path.stem),
        transactions=_path(path, txns, "transactions"),
        columns=columns,
        values=values,
        timezone=str(txns.get("timezone") or "UTC"),
        reports=_reports(path, raw.get("fraud_reports")),
    )


def _reports(path: Path, raw) -> FlaggedFrauds | ReportsTable | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or ("flag" in raw) == ("path" in raw):
        raise MappingError("fraud_reports: give either `flag` (+ `delay_days`) or `path`")
    if "flag" in raw:
        delay = raw.get("delay_days")
        if not isinstance(delay, int | float) or delay < 0:
            raise MappingError("fraud_reports.delay_days: a number of days >= 0 is required")
        reason = str(raw.get("reason_code") or DEFAULT_REASON_CODE)
        return FlaggedFrauds(column=str(raw["flag"]), delay_days=float(delay), reason_code=reason)
    columns = _string_map(raw.get("columns"), "fraud_reports.columns", FRAUD_REPORTS.fields)
    missing = [f for f in REPORT_REQUIRED if f not in columns]
    if missing:
        raise MappingError(f"fraud_reports.columns lacks the required field(s) {missing}")
    timezone = str(raw.get("timezone") or "UTC")
    return ReportsTable(path=_path(path, raw, "fraud_reports"), columns=columns, timezone=timezone)


def _string_map(raw, where: str, allowed: tuple[str, ...]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: expected a mapping of field to source column")
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        raise MappingError(f"{where}: unknown field(s) {unknown}; known: {list(allowed)}")
    return {str(k): str(v) for k, v in raw.items() if v is not None}


def _path(mapping_file: Path, section: dict, where: str) -> Path:
    if not section.get("path"):
        raise MappingError(f"{where}.path: the source file (CSV or Parquet) is required")
    source = Path(str(section["path"]))
    return source if source.is_absolute() else (mapping_file.parent / source).resolve()
