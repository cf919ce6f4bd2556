"""The offline history of the streaming velocity features, rebuilt per day from silver."""

import datetime as dt
import time

import dagster as dg
import pyarrow as pa

from assets import keys
from assets.partitions import daily_partitions, partition_days, rebuild_end, single_run
from features.velocity import VELOCITY_ENTITIES, velocity_schema
from resources.lakehouse import LakehouseResource

VELOCITY_KEYS = {entity: keys.velocity(entity) for entity in VELOCITY_ENTITIES}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key,
            group_name="features",
            deps=[keys.SILVER_TRANSACTIONS],
            description=f"Velocity of each {entity} after each of its transactions (Delta): "
            "the offline history of the stream's push source.",
            kinds={"delta", "pandas"},
        )
        for entity, key in VELOCITY_KEYS.items()
    ],
    partitions_def=daily_partitions,
    backfill_policy=single_run,
)
def velocity_history(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    """Velocity per card and customer over silver transactions, as the stream worker counts."""
    from features.velocity import velocity_history as history

    started = time.perf_counter()
    start, first_end = partition_days(context)
    # The day before gives the first hour of `start` its window; so the day after, where silver
    # holds it, is rebuilt too.
    end = rebuild_end(lakehouse, first_end, lookahead_days=1)
    columns = ["event_timestamp", "day", "amount_usd", *VELOCITY_ENTITIES.values()]
    events = lakehouse.read(
        "silver", "transactions", start - dt.timedelta(days=1), end, columns=columns
    ).to_pandas()
    for entity, key in VELOCITY_ENTITIES.items():
        rows = history(events, key)
        rows["day"] = rows["event_timestamp"].dt.date
        rows = rows[(rows["day"] >= start) & (rows["day"] <= end)]
        table = pa.Table.from_pandas(rows, schema=velocity_schema(key), preserve_index=False)
        write = lakehouse.overwrite("features", f"{entity}_velocity", table, start, end)
        expired = lakehouse.expire_history("features", f"{entity}_velocity")
        yield dg.MaterializeResult(
            asset_key=VELOCITY_KEYS[entity],
            metadata={
                "dagster/row_count": table.num_rows,
                "entities": int(rows[key].nunique()),
                "max_txn_count_10m": int(rows["txn_count_10m"].max()) if len(rows) else 0,
                "delta_version": write.version,
                "expired_files_removed": expired,
                "dagster/uri": write.uri,
                "duration_s": round(time.perf_counter() - started, 2),
            },
        )
