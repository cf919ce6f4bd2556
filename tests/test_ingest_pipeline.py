"""An imported source without devices, countries, categories or channels (the handbook's
dataset) goes through bronze, silver and gold with every contract passing: the tables built on
absent fields are empty, not failed, and nothing is filled in."""

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from assets.partitions import range_tags
from lakehouse.delta import read_days
from simulator.handbook import HandbookSize, write_and_import
from tests.support.lakehouse import check_results, run_lakehouse

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.dbt]
START, DAYS = dt.date(2026, 1, 1), 12


def test_a_source_without_optional_fields_passes_every_contract(fraud_home, spark_resource):
    source, summary = write_and_import(
        HandbookSize(customers=150, terminals=600, days=DAYS, start=START), fraud_home / "landing"
    )
    assert summary.absent_fields == [
        "merchant_category", "merchant_country", "device_id", "channel",
    ]  # fmt: skip
    end = START + dt.timedelta(days=DAYS - 1)
    result = run_lakehouse(None, START, end, spark_resource=spark_resource)
    checks = check_results(result)
    assert result.success and checks and all(checks.values()), checks

    def table(layer, name):
        return read_days(str(fraud_home / "lakehouse" / layer / name), START, end)

    silver = table("silver", "transactions")
    assert silver.num_rows == summary.placed
    for field in ("merchant_category", "merchant_country", "device_id", "channel"):
        assert silver.column(field).null_count == silver.num_rows, field
    assert table("gold", "customer_device_daily_features").num_rows == 0
    assert table("gold", "customer_country_daily_features").num_rows == 0
    assert table("gold", "merchant_daily_features").num_rows > 0
    # Reported 7 days later: the frauds of the range's first DAYS - 7 days are labelled.
    frauds = pd.read_parquet(source).query("TX_FRAUD == 1 and TX_TIME_DAYS < @DAYS - 7")
    labels = table("gold", "transaction_labels")
    labelled = labels.filter(labels.column("is_fraud")).column("transaction_id").to_pylist()
    assert sorted(labelled) == sorted(frauds["TRANSACTION_ID"].astype(str))

    # The features run all the same: velocity, Feast's registry, the online store and its parity
    # check; an empty view is not a stale one.
    from assets import feature_assets
    from features.lookup import OnlineFeatures
    from features.online_store import freshness
    from resources import build_resources

    online = dg.materialize(
        feature_assets,
        selection="group:features and not key:features/training_set",
        resources=build_resources(), instance=dg.DagsterInstance.ephemeral(),
        tags=range_tags(START, end), raise_on_error=False,
    )  # fmt: skip
    assert online.success and all(check_results(online).values())
    views = freshness(build_resources()["feast"].store())
    assert views["customer_device"]["entities"] == 0 and not views["customer_device"]["stale"]
    row = {"transaction_id": "x", "customer_id": "3", "card_id": "3",
           "merchant_id": str(source_terminal(source)), "device_id": None,
           "merchant_country": None, "event_timestamp": dt.datetime.now(dt.UTC)}  # fmt: skip
    lookup = OnlineFeatures.for_service(build_resources()["feast"].store(), "fraud_model_v1")
    the_next_noon = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(12), dt.UTC)
    values = lookup.lookup([row], as_of=the_next_noon)
    assert values["customer_device__missing"].tolist() == [True]
    assert values["merchant_daily__missing"].tolist() == [False]
    assert "merchant_daily__settled_fraud_rate_7d" in values


def source_terminal(source) -> int:
    """A terminal with transactions on the last day (its merchant features are online)."""
    frame = pd.read_parquet(source)
    return int(frame.loc[frame["TX_TIME_DAYS"] == DAYS - 1, "TERMINAL_ID"].iloc[0])
