"""The offline history of the merchants' decayed fraud report counts, rebuilt per report day."""

import datetime as dt
import time

import dagster as dg
import pyarrow.compute as pc

from assets import keys
from assets.partitions import daily_partitions, partition_days, rebuild_end, single_run
from resources.lakehouse import LakehouseResource

# Labels of transactions this long before a report day are read for its reports: chargebacks
# arrive up to 45 days late (the labels' own refresh), plus margin.
REPORTED_TRANSACTIONS_BACK = dt.timedelta(days=60)


@dg.asset(
    key=keys.MERCHANT_FRAUD_REPORTS,
    group_name="features",
    deps=[keys.LABELS],
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    kinds={"delta", "pyarrow"},
)
def merchant_fraud_reports(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    """Decayed fraud report counts per merchant after each report (Delta): the push history."""
    from features.report_decay import HORIZON, report_history

    started = time.perf_counter()
    start, first_end = partition_days(context)
    # A report weighs on the next 60 days' values: those that silver already holds are rebuilt.
    end = rebuild_end(lakehouse, first_end, lookahead_days=HORIZON.days)
    first_report = dt.datetime.combine(start - HORIZON, dt.time(), dt.UTC)
    frauds = lakehouse.read(
        "gold", "transaction_labels", start - HORIZON - REPORTED_TRANSACTIONS_BACK, end,
        columns=["merchant_id", "reported_at"],
        filter_expression=pc.field("is_fraud") & (pc.field("reported_at") >= first_report),
    )  # fmt: skip
    history = report_history(frauds)
    history = history.filter((pc.field("day") >= start) & (pc.field("day") <= end))
    write = lakehouse.overwrite("features", "merchant_fraud_reports", history, start, end)
    expired = lakehouse.expire_history("features", "merchant_fraud_reports")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": history.num_rows,
            "merchants": len(pc.unique(history["merchant_id"])),
            "reports_read": frauds.num_rows,
            "days_rewritten": f"{start} .. {end}",
            "delta_version": write.version,
            "expired_files_removed": expired,
            "dagster/uri": write.uri,
            "duration_s": round(time.perf_counter() - started, 2),
        }
    )
