"""Feast on the gold tables: apply, materialize per partition, online values (issue 4, SQLite)."""

import datetime as dt

import dagster as dg
import pytest

from assets.features import feast_registry, online_store
from assets.partitions import range_tags
from lakehouse.delta import overwrite_days
from resources import build_resources
from tests.support.gold import CUSTOMER_FLOATS, CUSTOMER_INTS, D1, D2, gold_table, write_gold
from tests.support.online_store import REDIS_TEST_DB

pytestmark = pytest.mark.integration


def _materialize(assets, tags=None):
    return dg.materialize(
        assets, resources=build_resources(), instance=dg.DagsterInstance.ephemeral(),
        tags=tags or {}, raise_on_error=False,
    )  # fmt: skip


def _online(home, customer: str, merchant: str) -> dict:
    store = build_resources()["feast"].store()
    row = {"customer_id": customer, "merchant_id": merchant, "card_id": "K1",
           "device_id": "D1", "merchant_country": "US"}  # fmt: skip
    return store.get_online_features(
        features=store.get_feature_service("fraud_model_v1"),
        entity_rows=[row],
        full_feature_names=True,
    ).to_dict()


def _stored_records(home) -> int:
    """Records in the online store: SQLite rows of every view table, or Redis hash fields."""
    import sqlite3

    store = build_resources()["feast"].store()
    if store.config.online_store.type == "sqlite":
        with sqlite3.connect(home / "feast" / "online_store.db") as db:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            return sum(db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables)
    import redis

    client = redis.Redis(db=REDIS_TEST_DB)
    return sum(client.hlen(key) for key in client.scan_iter())


@pytest.fixture
def applied(fraud_home, online_kind):
    write_gold(fraud_home)
    assert _materialize([feast_registry]).success
    return fraud_home


def test_the_online_store_holds_the_latest_gold_values_and_rematerializing_changes_nothing(applied):
    result = _materialize([online_store], range_tags(D1, D2))
    assert result.success
    [event, *_] = result.get_asset_materialization_events()
    assert event.event_specific_data.materialization.metadata["dagster/row_count"].value == 8
    [parity] = result.get_asset_check_evaluations()
    assert parity.passed and parity.metadata["entities_checked"].value == 5
    values = _online(applied, "C1", "M1")
    assert values["customer_daily__txn_count_30d"] == [2 * 10 + 2]  # day 2, the latest
    assert values["customer_daily__amount_max_30d"] == [pytest.approx(2 + 4 / 8)]
    assert values["merchant_daily__fraud_rate_30d"] == [pytest.approx(5 + 1 / 8)]
    assert values["customer_device__txn_count_30d"] == [7 * 10]  # two join keys
    assert values["customer_country__amount_max_30d"] == [8.0]
    stored = _stored_records(applied)
    assert _materialize([online_store], range_tags(D1, D2)).success
    assert _online(applied, "C1", "M1") == values
    assert _stored_records(applied) == stored  # replaced in place, nothing added


def test_a_backfill_of_an_old_day_leaves_the_newest_values_online(applied):
    assert _materialize([online_store], range_tags(D1, D2)).success
    # Day 2 is rebuilt with other values (seed 7), as the gold step does: an overwrite, whose
    # replaced files stay (time travel); Feast's offline store reads the table's current version.
    uri = str(applied / "lakehouse/gold/customer_daily_features")
    overwrite_days(
        uri, gold_table("customer_id", CUSTOMER_INTS, CUSTOMER_FLOATS, [("C1", D2, 7)]), D2, D2
    )
    assert len(list((applied / "lakehouse/gold/customer_daily_features").rglob("*.parquet"))) > 2
    assert _materialize([online_store], range_tags(D1, D1)).success  # backfill of day 1 only
    assert _online(applied, "C1", "M1")["customer_daily__txn_count_30d"] == [7 * 10 + 2]


def test_a_rebuilt_day_reaches_feast_at_its_current_version_with_the_old_one_kept(applied):
    """Gold keeps what an overwrite replaced (time travel); Feast reads the current version
    through the Delta log, never the replaced rows beside it (a reader that lists the parquet
    files would find both rows of C1 on day 2)."""
    from deltalake import DeltaTable

    uri = str(applied / "lakehouse/gold/customer_daily_features")
    rebuilt = gold_table("customer_id", CUSTOMER_INTS, CUSTOMER_FLOATS, [("C1", D2, 7)])
    overwrite_days(uri, rebuilt, D2, D2)
    assert _materialize([online_store], range_tags(D1, D2)).success
    assert _online(applied, "C1", "M1")["customer_daily__txn_count_30d"] == [7 * 10 + 2]
    store = build_resources()["feast"].store()
    entity = {
        "customer_id": ["C1"],
        "event_timestamp": [
            dt.datetime.combine(D2, dt.time(23, 59, 59), dt.UTC) + dt.timedelta(minutes=1)
        ],
    }
    import pandas as pd

    offline = store.get_historical_features(
        entity_df=pd.DataFrame(entity), features=["customer_daily:txn_count_30d"]
    ).to_df()
    assert offline["txn_count_30d"].tolist() == [7 * 10 + 2]
    before = DeltaTable(uri, version=0).to_pyarrow_table().to_pylist()
    assert [r["txn_count_30d"] for r in before if r["customer_id"] == "C1" and r["day"] == D2] != [
        7 * 10 + 2
    ]  # the replaced row: still readable at version 0


def test_a_gold_table_missing_a_column_fails_apply_naming_the_column(fraud_home):
    write_gold(fraud_home, drop_column="amount_max_30d")
    result = _materialize([feast_registry])
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "amount_max_30d" in failure.event_specific_data.error.message


def test_parity_catches_an_online_store_that_lags_gold(applied):
    from features.online_store import BATCH_VIEWS, parity, source_frame

    assert _materialize([online_store], range_tags(D1, D2)).success
    uri = str(applied / "lakehouse/gold/customer_daily_features")
    overwrite_days(
        uri, gold_table("customer_id", CUSTOMER_INTS, CUSTOMER_FLOATS, [("C1", D2, 7)]), D2, D2
    )
    resources = build_resources()
    window = (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 2, 1, tzinfo=dt.UTC))
    store = resources["feast"].store()
    views = [store.get_feature_view(name) for name in BATCH_VIEWS]
    mismatches, checked = (
        sum(counts)
        for counts in zip(*(parity(store, v, source_frame(v), *window) for v in views), strict=True)
    )
    assert checked == 5
    assert mismatches == len(CUSTOMER_INTS) + len(CUSTOMER_FLOATS)  # every C1 feature differs


def test_the_feast_cli_applies_and_materializes_the_same_repo(fraud_home):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from features.lookup import OnlineFeatures

    today = dt.datetime.now(dt.UTC).date()
    write_gold(fraud_home, days=(today - dt.timedelta(days=2), today - dt.timedelta(days=1)))
    feast = [str(Path(sys.executable).parent / "feast")]
    root = Path(__file__).resolve().parent.parent
    # the configuration names the repository's offline store, imported from its root
    env = {**os.environ, "FRAUD_HOME": str(fraud_home), "PYTHONPATH": str(root)}
    repo = root / "feature_repo"
    for command in (
        ["apply"],
        ["materialize-incremental", dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
         "-v", "customer_daily", "-v", "merchant_daily"],
    ):  # fmt: skip
        done = subprocess.run(feast + command, cwd=repo, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    store = build_resources()["feast"].store()  # the resource reads what the CLI wrote
    got = OnlineFeatures.for_views(store, ["customer_daily"]).lookup([{"customer_id": "C1"}])
    assert got["customer_daily__txn_count_30d"] == [2 * 10 + 2]
    assert got["customer_daily__missing"] == [False]


def test_a_run_of_the_day_before_rebuilds_the_next_days_first_hour(fraud_home):
    """Day 2 materialized before day 1's silver existed: the run of day 1 rebuilds day 2, whose
    first hour's windows reach back into day 1."""
    import pyarrow as pa

    from assets.velocity import velocity_history

    resources = build_resources()
    lakehouse = resources["lakehouse"]

    def silver(day: dt.date, stamps: list[dt.datetime]) -> None:
        rows = pa.table({
            "event_timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "day": pa.array([day] * len(stamps), pa.date32()),
            "amount_usd": [10.0] * len(stamps),
            "card_id": ["K1"] * len(stamps),
            "customer_id": ["C1"] * len(stamps),
        })  # fmt: skip
        lakehouse.overwrite("silver", "transactions", rows, day, day)

    def run(day: dt.date) -> None:
        result = dg.materialize([velocity_history], resources=resources, tags=range_tags(day, day))
        assert result.success

    day1, day2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)
    midnight = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    silver(day2, [midnight + dt.timedelta(minutes=10)])
    run(day2)
    silver(day1, [midnight - dt.timedelta(minutes=20)])
    run(day1)
    counts = lakehouse.read("features", "card_velocity", day1, day2).to_pylist()
    assert sorted((r["day"], r["txn_count_1h"]) for r in counts) == [(day1, 1), (day2, 2)]
