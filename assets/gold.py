"""Gold: the dbt project (dbt-duckdb) builds daily features and labels, exported back as Delta."""

import datetime as dt
import json
import time
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from assets import keys
from assets.metadata import contract_check_result, delta_metadata
from assets.partitions import daily_partitions, partition_days, single_run
from lakehouse.contracts import contract_path, verify_contract
from resources.dbt import load_dbt_project
from resources.lakehouse import LakehouseResource
from settings.env import fraud_home

dbt_project = load_dbt_project()
# Each gold table, and the silver field its rows need (a source without it gives no rows).
GOLD_TABLES = {
    "customer_daily_features": None,
    "merchant_daily_features": None,
    "customer_device_daily_features": "device_id",
    "customer_country_daily_features": "merchant_country",
    "transaction_labels": None,
}


class GoldTranslator(DagsterDbtTranslator):
    """dbt models become `gold/<model>` in group `gold`; sources map through their meta."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "model":
            return keys.gold(dbt_resource_props["name"])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "gold" if dbt_resource_props["resource_type"] == "model" else None


def _lookback_days() -> dict[str, int]:
    """Per model, the days before the range it rebuilds too (its meta `delta_lookback_days`)."""
    manifest = json.loads(dbt_project.manifest_path.read_text())
    return {
        node["name"]: int(node["config"].get("meta", {}).get("delta_lookback_days", 0))
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }


def _export_to_delta(
    model: str, lookback_days: int, lakehouse: LakehouseResource, start: dt.date, end: dt.date
):
    """Copy the model dbt just built from the DuckDB warehouse into gold Delta partitions."""
    import duckdb

    write_start = start - dt.timedelta(days=lookback_days)
    with duckdb.connect(str(fraud_home() / "warehouse.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone='UTC'")
        data = con.sql(f'select * from main."{model}"').to_arrow_table()
    write = lakehouse.overwrite("gold", model, data, write_start, end)
    # Feast's file offline store lists parquet files rather than reading the Delta log.
    removed = lakehouse.remove_replaced_files("gold", model)
    return {
        **delta_metadata(write, data.schema, write_start, end),
        "replaced_files_removed": removed,
    }


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=GoldTranslator(),
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    name="gold_dbt_models",
    pool="duckdb_warehouse",
)
def gold_dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, lakehouse: LakehouseResource
):
    """dbt build for the partition range, then each model whose tests passed goes to Delta."""
    started = time.perf_counter()
    start, end = partition_days(context)
    dbt_vars = {"start_day": start.isoformat(), "end_day": end.isoformat()}
    invocation = dbt.cli(
        ["build", "--vars", json.dumps(dbt_vars)], context=context, raise_on_error=False
    )
    events = list(invocation.stream())
    lookback = _lookback_days()
    failed_tests = {
        e.asset_key for e in events if isinstance(e, dg.AssetCheckResult) and not e.passed
    }
    for event in events:
        if isinstance(event, dg.Output):
            key = context.asset_key_for_output(event.output_name)
            if key in failed_tests:
                context.log.error(
                    f"{key.to_user_string()}: dbt tests failed, not exported to Delta"
                )
            else:
                model = key.path[-1]
                exported = _export_to_delta(model, lookback[model], lakehouse, start, end)
                event = event.with_metadata(
                    {
                        **event.metadata,
                        **exported,
                        "duration_s": round(time.perf_counter() - started, 2),
                    }
                )
        yield event
    if not invocation.is_successful():
        raise dg.Failure(
            description=f"dbt build failed for {start} .. {end}; see the dbt events above",
            metadata={"failed_tests_on": [k.to_user_string() for k in failed_tests]},
        )


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            "soda_contract",
            asset=keys.gold(table),
            blocking=True,
            partitions_def=daily_partitions,
            description="Soda contract on the gold Delta partitions just written",
        )
        for table in GOLD_TABLES
    ],
)
def gold_contracts(context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource):
    """Verify each gold table's Soda contract on the run's partition range; a table needs rows
    when silver had rows with its field (none from a source that lacks devices, say)."""
    start, end = partition_days(context)
    fields = sorted({f for f in GOLD_TABLES.values() if f})
    silver = lakehouse.read("silver", "transactions", start, end, columns=["day", *fields])
    for table, field in GOLD_TABLES.items():
        rows_expected = silver.num_rows - (silver.column(field).null_count if field else 0)
        data = lakehouse.read("gold", table, start, end)
        outcome = verify_contract(
            contract_path("gold", table),
            f"gold_{table}",
            data,
            variables={"min_rows": "1" if rows_expected else "0"},
        )
        yield contract_check_result(outcome, keys.gold(table))
