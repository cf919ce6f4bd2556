"""Bring your own data: a mapping file and an external table to landing files and reports;
bad input is counted and kept for quarantine, never dropped; a bad mapping is refused."""

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.__main__ import main
from ingest.importer import ImportRefused, import_table
from ingest.mapping import MappingError, load_mapping
from lakehouse.landing import FRAUD_REPORTS, TRANSACTIONS, read_landing_file

pytestmark = pytest.mark.unit

MAPPING = """
name: acme
transactions:
  path: txns.csv
  timezone: Europe/Paris
  columns:
    transaction_id: id
    timestamp: ts
    customer_id: client
    card_id: card
    merchant_id: shop
    amount: eur
    merchant_country: country
  values:
    currency: EUR
fraud_reports:
  flag: is_fraud
  delay_days: 2
"""


def _write(folder: Path, rows: list[dict], mapping: str = MAPPING) -> Path:
    pd.DataFrame(rows).to_csv(folder / "txns.csv", index=False)
    (folder / "mapping.yaml").write_text(mapping)
    return folder / "mapping.yaml"


def _row(i: int, ts: str, fraud: int = 0, **extra) -> dict:
    row = dict(id=f"t{i}", ts=ts, client="c1", card="k1", shop="m1", eur="10.50", country="FR")
    return {**row, "is_fraud": fraud, **extra}


def _landed(landing: Path, source=TRANSACTIONS) -> pd.DataFrame:
    files = sorted((landing / source.folder).glob(f"*{source.suffix}"))
    tables = [read_landing_file(source, f, source.day_of(f)).rows.to_pandas() for f in files]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def test_rows_land_by_their_utc_day_with_reports_after_the_delay(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUD_PARTITIONS_START", "2026-01-01")
    rows = [
        _row(1, "2026-03-01 00:30:00"),  # Paris, winter: 2026-02-28 23:30 UTC
        _row(2, "2026-03-01 12:00:00", fraud=1),
        _row(3, "2026-03-02T10:00:00+00:00"),
    ]
    mapping = load_mapping(_write(tmp_path, rows, MAPPING.replace("Europe/Paris", "UTC")))
    with pytest.raises(ImportRefused, match="mixes values with and without"):
        import_table(mapping, tmp_path / "landing")
    rows[2]["ts"] = "2026-03-02 11:00:00"
    summary = import_table(load_mapping(_write(tmp_path, rows)), tmp_path / "landing")
    landed = _landed(tmp_path / "landing")
    assert sorted(landed["_source_file"].unique()) == [
        "transactions_2026-02-28_acme.csv", "transactions_2026-03-01_acme.csv",
        "transactions_2026-03-02_acme.csv",
    ]  # fmt: skip
    by_id = landed.set_index("transaction_id")
    assert by_id.loc["t1", "timestamp"] == "2026-02-28T23:30:00.000Z"
    assert by_id.loc["t3", "timestamp"] == "2026-03-02T10:00:00.000Z"
    assert (by_id["currency"] == "EUR").all() and (by_id["merchant_country"] == "FR").all()
    assert (by_id["device_id"] == "").all() and (by_id["channel"] == "").all()
    assert summary.absent_fields == ["merchant_category", "device_id", "channel"]
    reports = _landed(tmp_path / "landing", FRAUD_REPORTS)
    assert reports[["transaction_id", "card_id", "reported_at", "reason_code"]].values.tolist() == [
        ["t2", "k1", "2026-03-03T11:00:00.000Z", "fraud"]
    ]
    assert reports["_source_file"].tolist() == ["fraud_reports_2026-03-03_acme.jsonl"]


def test_rows_that_cannot_be_placed_land_apart_and_are_counted(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUD_PARTITIONS_START", "2026-03-01")
    rows = [
        _row(1, "2026-03-01 12:00:00"),
        _row(2, "yesterday", fraud=1),
        _row(3, "2026-02-10 12:00:00"),  # before the partitions
        _row(1, "2026-03-02 12:00:00"),  # a duplicate id
        _row(4, "2026-03-29 02:30:00"),  # does not exist in Paris (clocks go forward)
    ]
    summary = import_table(load_mapping(_write(tmp_path, rows)), tmp_path / "landing")
    assert summary.rows == 5 and summary.placed == 2 and summary.duplicate_ids == 1
    assert summary.unplaced == {"unparseable timestamp": 2, "before the partitions' start": 1}
    assert summary.rejected_reports == {"its transaction was not placed": 1}
    landed = _landed(tmp_path / "landing")
    unplaced = landed[landed["_source_file"] == "transactions_2026-03-01_acme_unplaced.csv"]
    assert sorted(unplaced["timestamp"]) == [
        "2026-02-10T11:00:00.000Z", "2026-03-29 02:30:00", "yesterday",
    ]  # fmt: skip
    assert len(landed) == 5


def test_a_reports_table_sets_aside_reports_of_unknown_transactions(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUD_PARTITIONS_START", "2026-01-01")
    mapping = MAPPING.split("fraud_reports:")[0] + (
        "fraud_reports:\n  path: reports.parquet\n  timezone: Europe/Paris\n"
        "  columns: {transaction_id: tx, reported_at: at, reason_code: code}\n"
    )
    path = _write(tmp_path, [_row(1, "2026-03-01 12:00:00")], mapping)
    pd.DataFrame(
        {
            "tx": ["t1", "t9", "t1"],
            "at": pd.to_datetime(["2026-03-05 08:00", "2026-03-05 09:00", None]),
            "code": ["counterfeit", "counterfeit", "lost"],
        }
    ).to_parquet(tmp_path / "reports.parquet")
    summary = import_table(load_mapping(path), tmp_path / "landing")
    assert summary.reports == 1
    assert summary.rejected_reports == {"unknown transaction": 1, "unparseable reported_at": 1}
    rejected = [json.loads(line) for line in summary.rejected_file.read_text().splitlines()]
    assert {(r["transaction_id"], r["reason"]) for r in rejected} == {
        ("t9", "unknown transaction"), ("t1", "unparseable reported_at"),
    }  # fmt: skip
    reports = _landed(tmp_path / "landing", FRAUD_REPORTS)
    assert reports[["report_id", "card_id", "reported_at", "reason_code"]].values.tolist() == [
        ["rt1", "k1", "2026-03-05T07:00:00.000Z", "counterfeit"]
    ]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.replace("    card_id: card\n", ""), r"required field\(s\) \['card_id'\]"),
        (lambda m: m.replace("client", "klient"), r"lacks column\(s\) \['klient'\]"),
        (lambda m: m.replace("country: country", "colour: country"), "unknown field"),
        (lambda m: m.replace("  delay_days: 2\n", ""), "delay_days"),
        (lambda m: m.replace("  path: txns.csv\n", ""), "transactions.path"),
    ],
    ids=["no card", "no such column", "unknown field", "no delay", "no path"],
)
def test_a_bad_mapping_is_refused_before_anything_is_written(tmp_path, edit, message, capsys):
    path = _write(tmp_path, [_row(1, "2026-03-01 12:00:00")], edit(MAPPING))
    assert main([str(path), "--landing", str(tmp_path / "landing")]) == 2
    assert message.replace("\\", "") in capsys.readouterr().err.replace("\\", "") or pytest.fail(
        capsys.readouterr().err
    )
    assert not (tmp_path / "landing").exists()


def test_everything_before_the_partitions_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUD_PARTITIONS_START", "2026-01-01")
    path = _write(tmp_path, [_row(1, "2018-04-01 12:00:00")])
    with pytest.raises(ImportRefused, match="FRAUD_PARTITIONS_START=2018-04-01"):
        import_table(load_mapping(path), tmp_path / "landing")


def test_a_mapping_names_its_errors():
    with pytest.raises(MappingError, match="cannot read"):
        load_mapping(Path("/nonexistent/mapping.yaml"))


timestamps = st.one_of(
    st.datetimes(dt.datetime(2025, 12, 1), dt.datetime(2026, 2, 1)).map(str),
    st.sampled_from(["", "not a time", "2026-13-01 00:00:00"]),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.integers(0, 30), timestamps, st.booleans()), min_size=1, max_size=40))
def test_every_source_row_lands_exactly_once(tmp_path_factory, rows):
    """Nothing lost, nothing doubled: each row is in one landing file (placed or unplaced)."""
    folder = tmp_path_factory.mktemp("rows")
    frame = [_row(i, ts, int(fraud)) for i, ts, fraud in rows]
    try:
        summary = import_table(load_mapping(_write(folder, frame)), folder / "landing")
    except ImportRefused:
        return  # every timestamp bad, or all before the partitions: nothing written
    landed = _landed(folder / "landing")
    assert sorted(landed["transaction_id"]) == sorted(r["id"] for r in frame)
    assert summary.placed + sum(summary.unplaced.values()) == len(frame)
    reports = _landed(folder / "landing", FRAUD_REPORTS)
    assert len(reports) + sum(summary.rejected_reports.values()) == sum(f for *_, f in rows)


def test_importing_again_rewrites_the_same_files(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUD_PARTITIONS_START", "2026-01-01")
    path = _write(tmp_path, [_row(1, "2026-03-01 12:00:00", fraud=1), _row(2, "2026-03-02 12:00")])
    import_table(load_mapping(path), tmp_path / "landing")
    first = {p: p.read_text() for p in (tmp_path / "landing").rglob("*") if p.is_file()}
    import_table(load_mapping(path), tmp_path / "landing")
    again = {p: p.read_text() for p in (tmp_path / "landing").rglob("*") if p.is_file()}
    assert again == first and len(first) == 3  # two days of transactions, one of reports
