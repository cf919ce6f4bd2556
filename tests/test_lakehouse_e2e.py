"""The whole lakehouse on small generated data: landing -> bronze -> silver -> gold."""

import datetime as dt
import shutil
from types import SimpleNamespace

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from assets.metadata import materialized
from lakehouse import contracts
from lakehouse.delta import read_days, table_version
from settings.env import prepare_process_environment
from simulator.landing import generate
from tests.support.lakehouse import LAKEHOUSE_TABLES, check_results, run_lakehouse

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.dbt]
START, END = dt.date(2026, 1, 1), dt.date(2026, 1, 6)
FAR = (dt.date(2000, 1, 1), dt.date(2100, 1, 1))


def _table(home, layer, table):
    return read_days(str(home / "lakehouse" / layer / table), *FAR)


def _snapshot(home):
    out = {}
    for layer, table in LAKEHOUSE_TABLES:
        data = _table(home, layer, table)
        data = data.drop([c for c in ("_ingested_at",) if c in data.column_names])
        rows = sorted(map(repr, data.to_pylist()))
        out[f"{layer}/{table}"] = (table_version(str(home / "lakehouse" / layer / table)), rows)
    return out


@pytest.fixture(scope="module")
def lakehouse(tmp_path_factory, spark_resource):
    """Generate six days, materialize everything twice, snapshot the tables after each run."""
    home = tmp_path_factory.mktemp("e2e") / "fraud_home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAUD_HOME", str(home))
        prepare_process_environment()
        generate(home / "landing", days=6, customers=400, seed=21, malformed_rate=0.01)
        first = run_lakehouse(None, START, END, spark_resource=spark_resource)
        after_first = _snapshot(home)
        second = run_lakehouse(None, START, END, spark_resource=spark_resource)
        yield SimpleNamespace(
            home=home,
            first=first,
            second=second,
            after_first=after_first,
            after_second=_snapshot(home),
        )


def test_every_asset_materializes_and_every_check_passes(lakehouse):
    assert lakehouse.first.success
    assert set(materialized(lakehouse.first)) == {f"{layer}/{t}" for layer, t in LAKEHOUSE_TABLES}
    results = check_results(lakehouse.first)
    assert len(results) >= 9
    assert all(results.values()), [k for k, ok in results.items() if not ok]


def test_counts_reconcile_from_landing_to_gold(lakehouse):
    home = lakehouse.home
    landing_rows = sum(
        len(p.read_text().splitlines()) - 1 for p in (home / "landing/transactions").glob("*.csv")
    )
    bronze = _table(home, "bronze", "transactions")
    silver = _table(home, "silver", "transactions")
    quarantine = _table(home, "silver", "quarantine")
    meta = materialized(lakehouse.first)["silver/transactions"]
    quarantined = pc.sum(pc.equal(quarantine.column("source_table"), "transactions")).as_py()
    assert bronze.num_rows == landing_rows
    assert quarantined > 0 and meta["duplicates_dropped"] > 0
    assert bronze.num_rows == silver.num_rows + quarantined + meta["duplicates_dropped"]
    assert _table(home, "gold", "transaction_labels").num_rows == silver.num_rows
    assert len(set(silver.column("transaction_id").to_pylist())) == silver.num_rows


def test_materializing_twice_gives_the_same_rows_and_one_new_version_per_table(lakehouse):
    assert lakehouse.second.success
    for name, (version, rows) in lakehouse.after_first.items():
        version_2, rows_2 = lakehouse.after_second[name]
        assert rows_2 == rows, name
        assert version_2 == version + 1, name


def test_gold_keeps_the_version_a_rerun_replaced_for_time_travel(lakehouse):
    from deltalake import DeltaTable

    for layer, table in LAKEHOUSE_TABLES:
        if layer != "gold":
            continue
        version, rows = lakehouse.after_first[f"{layer}/{table}"]
        before = DeltaTable(str(lakehouse.home / "lakehouse" / layer / table), version=version)
        data = before.to_pyarrow_table()
        data = data.drop([c for c in ("_ingested_at",) if c in data.column_names])
        assert sorted(map(repr, data.to_pylist())) == rows, table


def _reference_customer_features(silver: pd.DataFrame, customer: str, day: dt.date) -> dict:
    window = silver[
        (silver.customer_id == customer)
        & (silver.day > day - dt.timedelta(days=30))
        & (silver.day <= day)
    ]
    last = lambda n: window[window.day > day - dt.timedelta(days=n)]  # noqa: E731
    return {
        "txn_count_1d": len(last(1)),
        "txn_count_7d": len(last(7)),
        "txn_count_30d": len(window),
        "amount_sum_7d": round(last(7).amount_usd.sum(), 2),
        "amount_max_30d": window.amount_usd.max(),
        "distinct_merchants_30d": window.merchant_id.nunique(),
        "distinct_devices_30d": window.device_id.nunique(),
    }


def test_gold_customer_features_match_a_slow_pandas_reference(lakehouse):
    silver = _table(lakehouse.home, "silver", "transactions").to_pandas()
    gold = _table(lakehouse.home, "gold", "customer_daily_features").to_pandas()
    sample = gold.sample(n=min(60, len(gold)), random_state=0)
    for row in sample.itertuples():
        expected = _reference_customer_features(silver, row.customer_id, row.day)
        actual = {k: getattr(row, k) for k in expected}
        assert actual == pytest.approx(expected), (row.customer_id, row.day)
        assert row.feature_timestamp == pd.Timestamp(row.day + dt.timedelta(days=1), tz="UTC")


@pytest.mark.parametrize("other", ["device_id", "merchant_country"])
def test_gold_customer_pair_features_match_a_slow_pandas_reference(lakehouse, other):
    silver = _table(lakehouse.home, "silver", "transactions").to_pandas()
    table = {"device_id": "customer_device", "merchant_country": "customer_country"}[other]
    gold = _table(lakehouse.home, "gold", f"{table}_daily_features").to_pandas()
    assert not gold.duplicated(["customer_id", other, "day"]).any()
    for row in gold.sample(n=min(60, len(gold)), random_state=0).itertuples():
        pair = silver[
            (silver.customer_id == row.customer_id) & (silver[other] == getattr(row, other))
        ]
        window = pair[(pair.day > row.day - dt.timedelta(days=30)) & (pair.day <= row.day)]
        assert (row.txn_count_30d, row.active_days_30d) == (len(window), window.day.nunique())
        assert row.amount_max_30d == pytest.approx(window.amount_usd.max())
    # every pair seen on a day has a row for that day: an absent pair is a new one
    seen = silver[["customer_id", other, "day"]].dropna().drop_duplicates()
    seen = seen[(seen.day >= START) & (seen.day <= END)]
    assert len(seen.merge(gold, on=["customer_id", other, "day"])) == len(seen)


TX_SCHEMA = pa.schema(
    [
        ("transaction_id", pa.string()), ("event_timestamp", pa.timestamp("us", tz="UTC")),
        ("customer_id", pa.string()), ("card_id", pa.string()), ("merchant_id", pa.string()),
        ("merchant_category", pa.string()), ("merchant_country", pa.string()),
        ("device_id", pa.string()), ("channel", pa.string()), ("amount", pa.float64()),
        ("currency", pa.string()), ("amount_usd", pa.float64()), ("_source_file", pa.string()),
        ("day", pa.date32()),
    ]
)  # fmt: skip
REPORT_SCHEMA = pa.schema(
    [
        ("report_id", pa.string()), ("transaction_id", pa.string()), ("card_id", pa.string()),
        ("reported_at", pa.timestamp("us", tz="UTC")), ("reason_code", pa.string()),
        ("_source_file", pa.string()), ("day", pa.date32()),
    ]
)  # fmt: skip


def at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


def tx(tid: str, day: dt.date, hour: int, amount: float) -> dict:
    """A silver transaction of customer C1, card K1, at merchant M1."""
    return dict(
        transaction_id=tid, event_timestamp=at(day, hour), customer_id="C1", card_id="K1",
        merchant_id="M1", merchant_category="grocery", merchant_country="US", device_id="D1",
        channel="pos", amount=amount, currency="USD", amount_usd=amount, _source_file="f",
        day=day,
    )  # fmt: skip


def report(tid: str, reported_at: dt.datetime) -> dict:
    return dict(report_id=f"r{tid}", transaction_id=tid, card_id="K1", reported_at=reported_at,
                reason_code="counterfeit", _source_file="r", day=reported_at.date())  # fmt: skip


def _silver_day(home, table: str, rows: list[dict], day: dt.date, schema: pa.Schema) -> None:
    from lakehouse.delta import overwrite_days

    data = pa.Table.from_pylist(rows, schema=schema)
    overwrite_days(str(home / "lakehouse/silver" / table), data, day, day)


def test_gold_uses_only_what_was_known_at_the_end_of_each_day(fraud_home, spark_resource):
    """Hand-built silver: a chargeback reported on day 2 must not count for day 1, and day-2
    transactions must not change day-1 features."""
    d1, d2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)
    _silver_day(
        fraud_home, "transactions", [tx("a", d1, 9, 10.0), tx("b", d1, 23, 30.0)], d1, TX_SCHEMA
    )
    _silver_day(fraud_home, "transactions", [tx("c", d2, 1, 500.0)], d2, TX_SCHEMA)
    _silver_day(fraud_home, "fraud_reports", [], d1, REPORT_SCHEMA)
    _silver_day(fraud_home, "fraud_reports", [report("a", at(d2, 8))], d2, REPORT_SCHEMA)

    result = run_lakehouse(dg.AssetSelection.groups("gold"), d1, d2, spark_resource=spark_resource)
    assert result.success
    customer = {
        r["day"]: r for r in _table(fraud_home, "gold", "customer_daily_features").to_pylist()
    }
    assert (customer[d1]["txn_count_1d"], customer[d1]["amount_max_30d"]) == (2, 30.0)
    assert (customer[d2]["txn_count_1d"], customer[d2]["txn_count_7d"]) == (1, 3)
    # card risk: a (day 1) reported on day 2 is known at day 2's end only
    assert customer[d1]["fraud_reports_known_30d"] == 0
    known = (customer[d2]["fraud_reports_known_7d"], customer[d2]["fraud_reports_known_30d"])
    assert known == (1, 1)
    merchant = {
        r["day"]: r for r in _table(fraud_home, "gold", "merchant_daily_features").to_pylist()
    }
    assert merchant[d1]["fraud_reports_known_30d"] == 0  # reported on day 2: unknown on day 1
    assert merchant[d2]["fraud_reports_known_30d"] == 1
    assert merchant[d2]["fraud_rate_30d"] == pytest.approx(1 / 3)
    labels = {
        r["transaction_id"]: r for r in _table(fraud_home, "gold", "transaction_labels").to_pylist()
    }
    assert labels["a"]["is_fraud"] and labels["a"]["label_delay_days"] == pytest.approx(
        23 / 24, abs=1e-3
    )
    assert not labels["b"]["is_fraud"]

    # A chargeback for b lands on day 3: gold for day 3 alone refreshes b's label (day 1).
    d3 = dt.date(2026, 1, 3)
    _silver_day(fraud_home, "transactions", [], d3, TX_SCHEMA)
    _silver_day(fraud_home, "fraud_reports", [report("b", at(d3, 5))], d3, REPORT_SCHEMA)
    assert run_lakehouse(dg.AssetSelection.groups("gold"), d3, d3).success
    labels = _table(fraud_home, "gold", "transaction_labels").to_pylist()
    assert sorted((r["transaction_id"], r["is_fraud"]) for r in labels) == [
        ("a", True),
        ("b", True),
        ("c", False),
    ]


def test_settled_windows_count_what_was_reported_of_the_days_before_the_delay(
    fraud_home, spark_resource
):
    """Merchant M1: two transactions on day 0 (a reported on day 2), one on day 4 (e reported
    on day 11), one on day 11. The settled windows end 7 days before the feature's day."""
    day = [dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(12)]
    transactions = {0: [tx("a", day[0], 9, 10.0), tx("b", day[0], 10, 20.0)],
                    4: [tx("e", day[4], 9, 30.0)], 11: [tx("z", day[11], 9, 40.0)]}  # fmt: skip
    reports = {2: [report("a", at(day[2], 8))], 11: [report("e", at(day[11], 8))]}
    for n, d in enumerate(day):
        _silver_day(fraud_home, "transactions", transactions.get(n, []), d, TX_SCHEMA)
        _silver_day(fraud_home, "fraud_reports", reports.get(n, []), d, REPORT_SCHEMA)
    result = run_lakehouse(dg.AssetSelection.groups("gold"), day[0], day[11],
                           spark_resource=spark_resource)  # fmt: skip
    assert result.success
    merchant = {
        r["day"]: r for r in _table(fraud_home, "gold", "merchant_daily_features").to_pylist()
    }

    def settled(n, window):
        row = merchant[day[n]]
        return tuple(row[f"settled_{name}_{window}"] for name in
                     ("txn_count", "fraud_count", "fraud_rate"))  # fmt: skip

    assert settled(6, "7d") == (0, 0, 0)  # ends on day -1: before anything
    assert settled(7, "1d") == (2, 1, 0.5)  # day 0; a was reported on day 2
    assert settled(8, "1d") == (0, 0, 0)
    assert settled(10, "7d") == (2, 1, 0.5)  # days -3..3: day 4 is not settled yet
    assert settled(11, "1d") == (1, 1, 1.0)  # day 4; e reported on day 11, known at its end
    assert settled(11, "7d") == (3, 2, pytest.approx(2 / 3))
    assert settled(11, "30d") == (3, 2, pytest.approx(2 / 3))
    assert merchant[day[11]]["fraud_rate_30d"] == pytest.approx(2 / 4)  # diluted by z


def test_a_failing_contract_stops_everything_downstream(
    fraud_home, spark_resource, monkeypatch, tmp_path
):
    strict = tmp_path / "contracts"
    shutil.copytree(contracts.CONTRACTS_DIR, strict)
    path = strict / "silver_transactions.yml"
    path.write_text(
        path.read_text().replace("          valid_min: 0\n", "          valid_max: 1\n", 1)
    )
    monkeypatch.setattr(contracts, "CONTRACTS_DIR", strict)
    generate(fraud_home / "landing", days=1, customers=100, seed=2)

    day = dt.date(2026, 1, 1)
    result = run_lakehouse(None, day, day, spark_resource=spark_resource)
    assert not result.success
    assert check_results(result)[("silver/transactions", "soda_contract")] is False
    done = set(materialized(result))
    assert not any(key.startswith("gold/") for key in done)
    assert not (fraud_home / "lakehouse/gold").exists()
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert started == {"bronze__transactions", "bronze__fraud_reports", "silver_tables"}


ORIGINAL_CONTRACTS = contracts.CONTRACTS_DIR


def _stricter(tmp_path, name: str, find: str, replace: str):
    """A copy of the project's contracts where `name` holds `replace` for its first `find`."""
    strict = tmp_path / f"strict_{name}"
    shutil.copytree(ORIGINAL_CONTRACTS, strict)
    path = strict / name
    assert find in path.read_text()
    path.write_text(path.read_text().replace(find, replace, 1))
    return strict


@pytest.mark.faults
def test_a_partition_failing_its_contract_is_not_published_and_readers_keep_the_last_good_one(
    fraud_home, spark_resource, monkeypatch, tmp_path
):
    generate(fraud_home / "landing", days=1, customers=100, seed=2)
    day = dt.date(2026, 1, 1)
    assert run_lakehouse(None, day, day, spark_resource=spark_resource).success

    def state(layer: str, table: str) -> tuple:
        return (table_version(str(fraud_home / "lakehouse" / layer / table)),
                sorted(map(repr, _table(fraud_home, layer, table).to_pylist())))  # fmt: skip

    tables = (("silver", "transactions"), ("gold", "customer_daily_features"))
    published = {table: state(*table) for table in tables}

    def unchanged(layer: str, table: str) -> bool:
        return state(layer, table) == published[layer, table]

    # The same day again, under a silver contract these rows break: nothing written.
    strict = _stricter(tmp_path, "silver_transactions.yml", "valid_min: 0\n", "valid_max: 1\n")
    monkeypatch.setattr(contracts, "CONTRACTS_DIR", strict)
    result = run_lakehouse(None, day, day, spark_resource=spark_resource)
    assert not result.success
    assert check_results(result)[("silver/transactions", "soda_contract")] is False
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert (
        "previous version of these days stays current" in failure.event_specific_data.error.message
    )
    assert unchanged("silver", "transactions") and unchanged("gold", "customer_daily_features")

    # Under a gold contract these rows break: silver is published again, that gold table is not.
    strict = _stricter(tmp_path, "gold_customer_daily_features.yml", "valid_min: 0\n",
                       "valid_max: -1\n")  # fmt: skip
    monkeypatch.setattr(contracts, "CONTRACTS_DIR", strict)
    result = run_lakehouse(None, day, day, spark_resource=spark_resource)
    assert not result.success
    assert not unchanged("silver", "transactions")  # a new version, the same rows
    assert unchanged("gold", "customer_daily_features")
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "gold/customer_daily_features not written" in failure.event_specific_data.error.message


def test_a_file_with_an_unexpected_schema_is_quarantined_whole_and_fails_the_run(
    fraud_home, spark_resource
):
    generate(fraud_home / "landing", days=1, customers=100, seed=2)
    path = fraud_home / "landing/transactions/transactions_2026-01-01.csv"
    header, _, body = path.read_text().partition("\n")
    path.write_text(header.replace("amount", "amount_cents") + "\n" + body)
    day = dt.date(2026, 1, 1)

    result = run_lakehouse([dg.AssetKey(["bronze", "transactions"])], day, day)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "refused and quarantined whole" in failure.event_specific_data.error.message
    quarantine = _table(fraud_home, "silver", "quarantine").to_pylist()
    assert len(quarantine) == body.count("\n")
    assert {r["stage"] for r in quarantine} == {"bronze"}
    assert "unexpected columns ['amount_cents']" in quarantine[0]["reason"]
    assert _table(fraud_home, "bronze", "transactions").num_rows == 0

    path.write_text(header + "\n" + body)  # upstream resends the file right
    assert run_lakehouse([dg.AssetKey(["bronze", "transactions"])], day, day).success
    assert _table(fraud_home, "silver", "quarantine").num_rows == 0


def test_an_empty_day_gives_empty_partitions_not_errors(fraud_home, spark_resource):
    generate(fraud_home / "landing", days=1, customers=100, seed=2)
    for path in (fraud_home / "landing").rglob("*.*"):
        path.write_text(path.read_text().partition("\n")[0] + "\n" if path.suffix == ".csv" else "")
    day = dt.date(2026, 1, 1)
    result = run_lakehouse(None, day, day, spark_resource=spark_resource)
    assert result.success, [k for k, ok in check_results(result).items() if not ok]
    counts = {k: m["dagster/row_count"] for k, m in materialized(result).items()}
    assert counts == {f"{layer}/{t}": 0 for layer, t in LAKEHOUSE_TABLES}


def test_features_build_on_the_lakehouse_point_in_time_and_in_parity(lakehouse):
    from assets.features import feast_registry, online_store
    from assets.fraud_reports import merchant_fraud_reports
    from assets.partitions import range_tags
    from assets.training_set import training_set
    from assets.velocity import velocity_history
    from resources import build_resources

    resources, instance = build_resources(), dg.DagsterInstance.ephemeral()
    daily = dg.materialize(
        [velocity_history, merchant_fraud_reports, feast_registry, online_store],
        resources=resources, instance=instance, tags=range_tags(START, END),
    )  # fmt: skip
    assert daily.success
    assert check_results(daily) == {("features/online_store", "online_offline_parity"): True}
    silver_rows = _table(lakehouse.home, "silver", "transactions").num_rows
    for entity in ("card", "customer"):
        assert _table(lakehouse.home, "features", f"{entity}_velocity").num_rows == silver_rows

    config = {"label_policy": "matured", "maturity_days": 2, "validation_share": 0.2,
              "test_share": 0.2}  # fmt: skip
    built = dg.materialize(
        [training_set], resources=resources, instance=instance,
        run_config={"ops": {"features__training_set": {"config": config}}},
    )  # fmt: skip
    assert built.success
    assert check_results(built) == {("features/training_set", "point_in_time_correct"): True}
    rows = _table(lakehouse.home, "features", "training_set").to_pandas()
    meta = materialized(built)["features/training_set"]
    assert len(rows) == meta["labels_used"] > 0
    assert set(rows["split"]) == {"train", "validation", "test"}
    held_out = rows[rows.split != "train"]
    # A held-out card's rows in the window are one split; the rows before it train.
    assert (held_out.groupby("card_id")["split"].nunique() == 1).all()
    assert not set(held_out.card_id) & set(
        rows.loc[(rows.split == "train") & (rows.event_timestamp >= held_out.event_timestamp.min()),
                 "card_id"]
    )  # fmt: skip
    # most transactions follow another of the same card within the hour, never all of them
    assert 0 < (~rows["card_velocity__missing"]).mean() < 1
    assert (rows.loc[rows["card_velocity__missing"], "card_velocity__txn_count_1h"] == 0).all()
    # Each row holds its merchant's reports known just before it, decayed by their age (six
    # small days may hold no report: tests/test_merchant_fraud_reports.py has some).
    labels = _table(lakehouse.home, "gold", "transaction_labels").to_pandas()
    reports = labels.loc[labels["is_fraud"], ["merchant_id", "reported_at"]]
    history = _table(lakehouse.home, "features", "merchant_fraud_reports")
    assert history.num_rows == (reports["reported_at"].dt.date <= END).sum()
    decayed = rows["merchant_fraud_reports__fraud_reports_decayed_7d"]
    for i in rows.sample(300, random_state=0).index:
        at, merchant = rows.at[i, "event_timestamp"], rows.at[i, "merchant_id"]
        known = reports[(reports["merchant_id"] == merchant) & (reports["reported_at"] < at)]
        ages = (at - known["reported_at"]).dt.total_seconds().to_numpy()
        assert decayed[i] == pytest.approx(np.exp(-ages / (7 * 86_400)).sum(), abs=1e-9)
