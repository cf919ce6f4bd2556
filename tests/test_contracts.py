"""Soda contracts fail on what matters: missing columns, broken rows, an empty table."""

import datetime as dt

import pyarrow as pa
import pytest

from lakehouse.contracts import contract_path, verify_contract

pytestmark = pytest.mark.unit
T = dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)


SCHEMA = pa.schema(
    [
        ("report_id", pa.string()),
        ("transaction_id", pa.string()),
        ("card_id", pa.string()),
        ("reported_at", pa.timestamp("us", tz="UTC")),
        ("reason_code", pa.string()),
        ("_source_file", pa.string()),
        ("day", pa.date32()),
    ]
)


def _reports(n: int = 2) -> pa.Table:
    return pa.table(
        {
            "report_id": [f"r{i}" for i in range(n)],
            "transaction_id": [f"t{i}" for i in range(n)],
            "card_id": ["k"] * n,
            "reported_at": [T] * n,
            "reason_code": ["counterfeit"] * n,
            "_source_file": ["f.jsonl"] * n,
            "day": [T.date()] * n,
        },
        schema=SCHEMA,
    )


def _verify(data: pa.Table, min_rows: str = "1"):
    return verify_contract(
        contract_path("silver", "fraud_reports"),
        "silver_fraud_reports",
        data,
        {"min_rows": min_rows},
    )


def test_valid_rows_pass():
    outcome = _verify(_reports())
    assert outcome.passed, outcome.summary()
    assert all(c.outcome == "PASSED" for c in outcome.checks)


def test_a_missing_column_fails_instead_of_passing_vacuously():
    outcome = _verify(_reports().drop(["card_id"]))
    assert not outcome.passed
    assert "missing columns ['card_id']" in outcome.summary()


def test_duplicates_fail_and_the_summary_names_the_check():
    data = _reports()
    data = data.set_column(1, "transaction_id", pa.array(["t0", "t0"]))
    outcome = _verify(data)
    assert not outcome.passed
    assert "transaction_id: No duplicate values" in outcome.summary()


def test_an_empty_table_fails_unless_the_day_was_empty():
    assert not _verify(_reports(0), min_rows="1").passed
    assert _verify(_reports(0), min_rows="0").passed


def test_every_layer_table_has_a_contract():
    tables = [("silver", t) for t in ("transactions", "fraud_reports", "quarantine")] + [
        ("gold", t)
        for t in ("customer_daily_features", "merchant_daily_features", "transaction_labels")
    ]
    for layer, table in tables:
        text = contract_path(layer, table).read_text()
        assert f"dataset: duckdb/main/{layer}_{table}" in text
        assert "- schema:" in text
