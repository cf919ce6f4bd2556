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
from assets.partitions import daily_partitions, partition_days, rebuild_end, single_run
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


def _model_days(meta_key: str) -> dict[str, int]:
    """Per model, its meta `meta_key` (`delta_lookback_days`: the days before the range it
    rebuilds too; `delta_lookahead_days`: the days after a day whose rows read that day)."""
    manifest = json.loads(dbt_project.manifest_path.read_text())
    return {
        node["name"]: int(node["config"].get("meta", {}).get(meta_key, 0))
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }


def _built_model(model: str):
    """The model dbt just built, from the DuckDB warehouse."""
    import duckdb

    with duckdb.connect(str(fraud_home() / "warehouse.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone='UTC'")
        return con.sql(f'select * from main."{model}"').to_arrow_table()


def tables_needing_rows(lakehouse: LakehouseResource, start: dt.date, end: dt.date) -> set[str]:
    """The gold tables that must have rows for [start, end]: those whose silver field some of
    silver's rows carry (none from a source that lacks devices, say). Silver is read once."""
    fields = sorted({f for f in GOLD_TABLES.values() if f})
    silver = lakehouse.read("silver", "transactions", start, end, columns=["day", *fields])
    return {
        table
        for table, field in GOLD_TABLES.items()
        if silver.num_rows - (silver.column(field).null_count if field else 0)
    }


def gold_contract(table: str, data, start: dt.date, end: dt.date, needs_rows: bool):
    """Verify `table`'s Soda contract on the days [start, end] of `data`."""
    import pyarrow.compute as pc

    days = data.filter((pc.field("day") >= start) & (pc.field("day") <= end))
    return verify_contract(
        contract_path("gold", table),
        f"gold_{table}",
        days,
        variables={"min_rows": "1" if needs_rows else "0"},
    )


def _export_to_delta(model: str, data, lookback_days: int, lakehouse, start: dt.date, end: dt.date):
    """Copy the model's days into gold Delta partitions."""
    write_start = start - dt.timedelta(days=lookback_days)
    write = lakehouse.overwrite("gold", model, data, write_start, end)
    return {
        **delta_metadata(write, data.schema, write_start, end),
        "expired_files_removed": lakehouse.expire_history("gold", model),
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
    last = rebuild_end(lakehouse, end, max(_model_days("delta_lookahead_days").values()))
    if last > end:
        context.log.info(
            f"silver holds {end} + 1 .. {last}, whose windows read this range: rebuilt"
        )
    dbt_vars = {"start_day": start.isoformat(), "end_day": last.isoformat()}
    invocation = dbt.cli(
        ["build", "--vars", json.dumps(dbt_vars)], context=context, raise_on_error=False
    )
    events = list(invocation.stream())
    lookback = _model_days("delta_lookback_days")
    failed_tests = {
        e.asset_key for e in events if isinstance(e, dg.AssetCheckResult) and not e.passed
    }
    refused, needing_rows = [], tables_needing_rows(lakehouse, start, end)
    for event in events:
        if isinstance(event, dg.Output):
            key = context.asset_key_for_output(event.output_name)
            model = key.path[-1]
            if key in failed_tests:
                context.log.error(
                    f"{key.to_user_string()}: dbt tests failed, not exported to Delta"
                )
            else:
                data = _built_model(model)
                contract = gold_contract(model, data, start, last, model in needing_rows)
                if not contract.passed:  # audited before it is published: the last version stays
                    context.log.error(f"{key.to_user_string()}: {contract.summary()}; not written")
                    refused.append(key.to_user_string())
                    continue
                exported = _export_to_delta(model, data, lookback[model], lakehouse, start, last)
                event = event.with_metadata(
                    {
                        **event.metadata,
                        **exported,
                        "duration_s": round(time.perf_counter() - started, 2),
                    }
                )
        yield event
    if refused:
        raise dg.Failure(
            description=f"Soda contracts failed for {start} .. {end}: {', '.join(refused)} not "
            "written, the previous version of these days stays current",
            metadata={"refused": refused},
        )
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
    """Verify each gold table's Soda contract on the run's partition range, as written."""
    start, end = partition_days(context)
    needing_rows = tables_needing_rows(lakehouse, start, end)
    for table in GOLD_TABLES:
        data = lakehouse.read("gold", table, start, end)
        outcome = gold_contract(table, data, start, end, table in needing_rows)
        yield contract_check_result(outcome, keys.gold(table))
