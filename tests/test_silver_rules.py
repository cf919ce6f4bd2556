"""Silver rules in Spark against a plain-Python statement of the same rules (hypothesis)."""

import datetime as dt
import re

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakehouse.landing import FRAUD_REPORTS, TRANSACTIONS
from lakehouse.silver import clean_fraud_reports, clean_transactions
from settings.currencies import KNOWN_CURRENCIES
from simulator.malformed import NO_CURRENCY

pytestmark = [pytest.mark.integration, pytest.mark.spark]
DAY = dt.date(2026, 1, 5)
MONEY = re.compile(r"^-?[0-9]{1,12}(\.[0-9]{1,2})?$")
TIMESTAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{3})?Z$")

ids = st.sampled_from(["", " ", "tx1", "tx2", "tx3", "tx4", " tx5 "])
timestamps = st.sampled_from(
    [
        "2026-01-05T10:00:00.000Z",
        "2026-01-05T23:59:59Z",
        "2026-01-06T00:00:00.000Z",
        "2026-02-30T10:00:00.000Z",
        "yesterday",
        "",
        "2026-01-05 10:00:00",
    ]
)
amounts = st.sampled_from(
    ["12.50", "0.00", "7", " 3.1 ", "-4.00", "12,50", "abc", "", "NaN", "1e5"]
)
currencies = st.sampled_from([*KNOWN_CURRENCIES[:3], "usd", NO_CURRENCY, "JPY", ""])
schema_errors = st.sampled_from([None, None, None, "expected 11 fields, got 12"])


def _timestamp_day(text: str) -> dt.date | None:
    match = TIMESTAMP.match(text)
    if not match:
        return None
    try:
        return dt.datetime(*map(int, match.groups()[:6])).date()
    except ValueError:
        return None


def expected_transaction_reason(row: dict) -> str | None:
    """The rules as the README states them, first failing rule wins."""
    if row["_schema_error"]:
        return f"schema: {row['_schema_error']}"
    for column in ("transaction_id", "customer_id", "card_id", "merchant_id"):
        if not (row[column] or "").strip():
            return f"missing_{column}"
    day = _timestamp_day(row["timestamp"])
    if day is None:
        return "unparseable_timestamp"
    if day != DAY:
        return "timestamp_outside_partition"
    amount = row["amount"].strip()
    if not MONEY.match(amount):
        return "unparseable_amount"
    if amount.startswith("-"):
        return "negative_amount"
    if row["currency"].strip().upper() not in KNOWN_CURRENCIES:
        return "unknown_currency"
    return None


def bronze_table(rows: list[dict], source) -> pa.Table:
    schema = source.bronze_schema()
    columns = {name: [r.get(name) for r in rows] for name in schema.names}
    return pa.table(columns, schema=schema)


@st.composite
def transaction_rows(draw):
    n = draw(st.integers(min_value=0, max_value=25))
    rows = []
    for line in range(n):
        rows.append(
            {
                "transaction_id": draw(ids),
                "timestamp": draw(timestamps),
                "customer_id": draw(st.sampled_from(["c1", "", "c2"])),
                "card_id": "k1",
                "merchant_id": draw(st.sampled_from(["m1", "m2", " "])),
                "merchant_category": "grocery",
                "merchant_country": "us",
                "device_id": draw(st.sampled_from(["d1", ""])),
                "channel": "POS",
                "amount": draw(amounts),
                "currency": draw(currencies),
                "_source_file": draw(st.sampled_from(["a.csv", "b.csv"])),
                "_source_line": line + 2,
                "_schema_error": draw(schema_errors),
                "_raw_record": None,
                "_ingested_at": dt.datetime(2026, 1, 6, tzinfo=dt.UTC),
                "day": DAY,
            }
        )
    return rows


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=transaction_rows())
def test_transactions_follow_the_rules_and_reconcile(spark, rows):
    cleaned = clean_transactions(spark.createDataFrame(bronze_table(rows, TRANSACTIONS)))
    reasons = [expected_transaction_reason(r) for r in rows]
    valid = [r for r, reason in zip(rows, reasons, strict=True) if reason is None]
    first_arrival = {}
    for r in sorted(valid, key=lambda r: (r["_source_file"], r["_source_line"])):
        first_arrival.setdefault(r["transaction_id"].strip(), r)

    assert sorted(cleaned.rejected.column("reason").to_pylist()) == sorted(
        r for r in reasons if r is not None
    )
    silver = {r["transaction_id"]: r for r in cleaned.valid.to_pylist()}
    assert set(silver) == set(first_arrival)
    for key, row in first_arrival.items():
        assert silver[key]["amount"] == pytest.approx(float(row["amount"].strip()))
        assert silver[key]["_source_file"] == row["_source_file"]
        assert silver[key]["currency"] == row["currency"].strip().upper()
        assert silver[key]["device_id"] == (row["device_id"] or None)
    assert cleaned.duplicates == len(valid) - len(first_arrival)
    assert cleaned.valid.num_rows + cleaned.rejected.num_rows + cleaned.duplicates == len(rows)


def test_rejected_rows_carry_their_source_and_raw_record(spark):
    row = {f: "x" for f in TRANSACTIONS.fields} | {
        "transaction_id": "tx9",
        "timestamp": "2026-01-05T10:00:00Z",
        "amount": "abc",
        "currency": "USD",
        "_source_file": "f.csv",
        "_source_line": 7,
        "day": DAY,
    }
    cleaned = clean_transactions(spark.createDataFrame(bronze_table([row], TRANSACTIONS)))
    [rejected] = cleaned.rejected.to_pylist()
    assert rejected["reason"] == "unparseable_amount"
    assert (rejected["source_file"], rejected["source_line"]) == ("f.csv", 7)
    assert rejected["record_id"] == "tx9"
    assert '"amount":"abc"' in rejected["record"]
    assert rejected["stage"] == "silver" and rejected["source_table"] == "transactions"


def test_amounts_are_converted_to_usd(spark):
    base = {f: "x" for f in TRANSACTIONS.fields} | {
        "timestamp": "2026-01-05T10:00:00Z",
        "_source_file": "f.csv",
        "day": DAY,
    }
    rows = [
        base | {"transaction_id": "a", "amount": "100.00", "currency": "GBP", "_source_line": 2},
        base | {"transaction_id": "b", "amount": "100.00", "currency": "USD", "_source_line": 3},
    ]
    cleaned = clean_transactions(spark.createDataFrame(bronze_table(rows, TRANSACTIONS)))
    usd = {r["transaction_id"]: r["amount_usd"] for r in cleaned.valid.to_pylist()}
    assert usd == {"a": pytest.approx(126.58), "b": 100.0}


def test_fraud_reports_are_deduplicated_on_transaction_id(spark):
    base = {"card_id": "k", "reason_code": "Counterfeit", "_source_file": "r.jsonl", "day": DAY}
    rows = [
        base | {"report_id": "r1", "transaction_id": "t1", "reported_at": "2026-01-05T01:00:00Z",
                "_source_line": 1},
        base | {"report_id": "r2", "transaction_id": "t1", "reported_at": "2026-01-05T02:00:00Z",
                "_source_line": 2},
        base | {"report_id": "r3", "transaction_id": "", "reported_at": "2026-01-05T02:00:00Z",
                "_source_line": 3},
        base | {"report_id": "r4", "transaction_id": "t4", "reported_at": "2026-01-04T02:00:00Z",
                "_source_line": 4},
    ]  # fmt: skip
    cleaned = clean_fraud_reports(spark.createDataFrame(bronze_table(rows, FRAUD_REPORTS)))
    assert [r["report_id"] for r in cleaned.valid.to_pylist()] == ["r1"]
    assert cleaned.valid.column("reason_code").to_pylist() == ["counterfeit"]
    assert cleaned.duplicates == 1
    assert sorted(cleaned.rejected.column("reason").to_pylist()) == [
        "missing_transaction_id",
        "timestamp_outside_partition",
    ]
