"""The quarantine table: every rejected row or file, with the stage and reason that rejected it."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("day", pa.date32()),
        pa.field("stage", pa.string()),  # bronze: whole file refused; silver: row failed a rule
        pa.field("source_table", pa.string()),
        pa.field("source_file", pa.string()),
        pa.field("source_line", pa.int64()),
        pa.field("record_id", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("record", pa.string()),
    ]
)


def rejected_file_rows(
    table: str, day: dt.date, file_name: str, reason: str, lines: list[str]
) -> pa.Table:
    """One quarantine row per data line of a file refused whole (header is line 1)."""
    n = len(lines)
    return pa.table(
        {
            "day": [day] * n,
            "stage": ["bronze"] * n,
            "source_table": [table] * n,
            "source_file": [file_name] * n,
            "source_line": list(range(2, n + 2)),
            "record_id": [None] * n,
            "reason": [reason] * n,
            "record": lines,
        },
        schema=QUARANTINE_SCHEMA,
    )


def stage_predicate(stage: str, table: str | None = None) -> str:
    """The rows one writer owns, so bronze and silver never overwrite each other's rejections."""
    predicate = f"stage = '{stage}'"
    return f"{predicate} AND source_table = '{table}'" if table else predicate
