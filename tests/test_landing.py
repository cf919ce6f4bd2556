"""Landing to bronze: text kept exactly, broken rows kept with a reason, bad files refused."""

import csv
import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakehouse.landing import (
    FRAUD_REPORTS,
    RAW_RECORD,
    SCHEMA_ERROR,
    SOURCE_LINE,
    TRANSACTIONS,
    read_landing_file,
)

pytestmark = pytest.mark.unit
DAY = dt.date(2026, 1, 5)
FIELDS = list(TRANSACTIONS.fields)
# Any text a field may hold on one line, commas and quotes included.
field_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r\n"),
    max_size=12,
)


def _write_csv(path, header, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.lists(field_text, min_size=11, max_size=11), max_size=15))
def test_csv_fields_reach_bronze_exactly_as_written(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("landing") / "transactions_2026-01-05.csv"
    _write_csv(path, FIELDS, rows)
    table = read_landing_file(TRANSACTIONS, path, DAY).rows
    assert table.num_rows == len(rows)
    assert [[r[f] for f in FIELDS] for r in table.to_pylist()] == rows
    assert table.column(SOURCE_LINE).to_pylist() == list(range(2, len(rows) + 2))


def test_rows_with_wrong_field_counts_are_kept_with_their_line_and_text(tmp_path):
    path = tmp_path / "transactions_2026-01-05.csv"
    good = ["tx1", *["x"] * 10]
    _write_csv(path, FIELDS, [good, [*good, "extra"], good[:-1], good])
    rows = read_landing_file(TRANSACTIONS, path, DAY).rows.to_pylist()
    assert len(rows) == 4
    broken = sorted((r[SOURCE_LINE], r[SCHEMA_ERROR]) for r in rows if r[SCHEMA_ERROR])
    assert broken == [(3, "expected 11 fields, got 12"), (4, "expected 11 fields, got 10")]
    assert {r[RAW_RECORD] for r in rows if r[SCHEMA_ERROR]} == {
        ",".join([*good, "extra"]),
        ",".join(good[:-1]),
    }
    assert sorted(r[SOURCE_LINE] for r in rows if not r[SCHEMA_ERROR]) == [2, 5]


def test_a_file_with_an_unexpected_header_is_refused_whole_with_a_reason(tmp_path):
    path = tmp_path / "transactions_2026-01-05.csv"
    header = [f for f in FIELDS if f != "amount"] + ["amount_cents"]
    _write_csv(path, header, [["v"] * 11, ["w"] * 11])
    read = read_landing_file(TRANSACTIONS, path, DAY)
    assert read.rows is None
    assert "missing columns ['amount']" in read.rejection.reason
    assert "unexpected columns ['amount_cents']" in read.rejection.reason
    assert len(read.rejection.lines) == 2


def test_jsonl_records_that_break_are_kept_with_a_reason(tmp_path):
    path = tmp_path / "fraud_reports_2026-01-05.jsonl"
    good = {f: f"v_{f}" for f in FRAUD_REPORTS.fields}
    lines = [
        json.dumps(good),
        '{"report_id": "r1',
        json.dumps({**good, "surprise": 1}),
        json.dumps({k: v for k, v in good.items() if k != "reason_code"}),
        "[1, 2]",
    ]
    path.write_text("\n".join(lines) + "\n")
    rows = read_landing_file(FRAUD_REPORTS, path, DAY).rows.to_pylist()
    errors = [r[SCHEMA_ERROR] for r in rows]
    assert errors[0] is None
    assert errors[1].startswith("invalid JSON")
    assert "unexpected fields ['surprise']" in errors[2]
    assert "missing fields ['reason_code']" in errors[3]
    assert errors[4] == "expected a JSON object, got list"
    assert [r[SOURCE_LINE] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[1][RAW_RECORD] == lines[1]


def test_files_are_matched_to_their_day_by_name(tmp_path):
    folder = tmp_path / "transactions"
    folder.mkdir()
    for name in ("transactions_2026-01-05.csv", "transactions_2026-01-05_2.csv", "other.csv"):
        (folder / name).write_text("")
    found = [p.name for p in TRANSACTIONS.files_for_day(tmp_path, DAY)]
    assert found == ["transactions_2026-01-05.csv", "transactions_2026-01-05_2.csv"]
    assert TRANSACTIONS.day_of(folder / "transactions_2026-01-05_2.csv") == DAY
    assert TRANSACTIONS.day_of(folder / "other.csv") is None
    assert TRANSACTIONS.day_of(folder / "transactions_2026-13-45.csv") is None
