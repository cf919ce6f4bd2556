"""Lakehouse runs in-process: materialize a selection for a range of days; its check results."""

import datetime as dt

import dagster as dg

from assets.partitions import range_tags

# Every table of the lakehouse run, as (layer, table).
LAKEHOUSE_TABLES = [
    ("bronze", "transactions"),
    ("bronze", "fraud_reports"),
    ("silver", "transactions"),
    ("silver", "fraud_reports"),
    ("silver", "quarantine"),
    ("gold", "customer_daily_features"),
    ("gold", "merchant_daily_features"),
    ("gold", "customer_device_daily_features"),
    ("gold", "customer_country_daily_features"),
    ("gold", "transaction_labels"),
]


def run_lakehouse(selection, start: dt.date, end: dt.date, instance=None, spark_resource=None):
    """Materialize `selection` (asset keys or a selection string) for days [start, end]."""
    from assets import asset_checks, lakehouse_assets
    from resources import build_resources

    resources = build_resources()
    if spark_resource is not None:
        resources["spark"] = spark_resource
    return dg.materialize(
        [*lakehouse_assets, *asset_checks],
        selection=selection,
        resources=resources,
        instance=instance or dg.DagsterInstance.ephemeral(),
        tags=range_tags(start, end),
        raise_on_error=False,
    )


def check_results(result) -> dict[tuple[str, str], bool]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for e in (
            ev.event_specific_data
            for ev in result.all_events
            if ev.event_type_value == "ASSET_CHECK_EVALUATION"
        )
    }


def table_rows(home, start: dt.date, end: dt.date) -> dict[str, list[str]]:
    """Every lakehouse table's rows of days [start, end] under FRAUD_HOME `home`, sorted, without
    the columns that name the run or its files (those starting with `_`)."""
    from lakehouse.delta import read_days

    out = {}
    for layer, table in LAKEHOUSE_TABLES:
        data = read_days(str(home / "lakehouse" / layer / table), start, end)
        data = data.drop([c for c in data.column_names if c.startswith("_")])
        out[f"{layer}/{table}"] = sorted(map(repr, data.to_pylist()))
    return out
