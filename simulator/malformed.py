"""Corruption of a small share of landing rows, the way upstream systems really break."""

from __future__ import annotations

import numpy as np

Row = list[str]

CSV_KINDS: tuple[str, ...] = (
    "missing_id",
    "unparseable_amount",
    "unparseable_timestamp",
    "negative_amount",
    "unknown_currency",
    "duplicate_id",
    "extra_column",
    "missing_column",
)
JSON_KINDS: tuple[str, ...] = (
    "missing_id",
    "unparseable_timestamp",
    "duplicate_id",
    "extra_column",
    "missing_column",
    "truncated_record",
)
BAD_AMOUNTS = ("12,50", "abc", "", "1.2.3", "NaN")
# ISO 4217's code for "no currency": what a broken upstream export writes when it lost one.
NO_CURRENCY = "XXX"
BAD_TIMESTAMPS = ("2026-02-30T10:00:00.000Z", "yesterday", "", "17/03/2026 10:00")


def corrupt(
    rng: np.random.Generator, rows: list[Row], columns: tuple[str, ...], rate: float, kinds
) -> list[Row | str]:
    """Corrupt about `rate` of `rows`; a `str` in the result is a raw line (broken record)."""
    out: list[Row | str] = list(rows)
    if rate <= 0 or not rows:
        return out
    picked = np.flatnonzero(rng.random(len(rows)) < rate)
    chosen_kinds = rng.choice(len(kinds), size=len(picked))
    duplicates = []
    for index, kind_index in zip(picked.tolist(), chosen_kinds.tolist(), strict=True):
        kind = kinds[kind_index]
        if kind == "duplicate_id":
            duplicates.append(index)
            continue
        out[index] = _corrupt_row(rng, list(rows[index]), columns, kind)
    # A resent record lands right after the original, as a retrying client would send it.
    for index in reversed(duplicates):
        out.insert(index + 1, list(rows[index]))
    return out


def _corrupt_row(rng: np.random.Generator, row: Row, columns: tuple[str, ...], kind: str):
    col = {name: i for i, name in enumerate(columns)}
    if kind == "missing_id":
        ids = [name for name in columns if name.endswith("_id")]
        row[col[ids[int(rng.integers(len(ids)))]]] = ""
    elif kind == "unparseable_amount":
        row[col["amount"]] = BAD_AMOUNTS[int(rng.integers(len(BAD_AMOUNTS)))]
    elif kind == "unparseable_timestamp":
        ts_column = "timestamp" if "timestamp" in col else "reported_at"
        row[col[ts_column]] = BAD_TIMESTAMPS[int(rng.integers(len(BAD_TIMESTAMPS)))]
    elif kind == "negative_amount":
        row[col["amount"]] = "-" + row[col["amount"]]
    elif kind == "unknown_currency":
        row[col["currency"]] = NO_CURRENCY
    elif kind == "extra_column":
        row.append("unexpected")
    elif kind == "missing_column":
        row.pop()
    elif kind == "truncated_record":
        return '{"report_id": "' + row[0]
    return row
