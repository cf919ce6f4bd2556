"""Silver: typed, validated, deduplicated tables in Spark; rejected rows go to quarantine."""

import time
from collections import Counter

import dagster as dg
import pyarrow as pa

from assets import keys
from assets.metadata import audited, contract_check_result, counts_table, delta_metadata
from assets.partitions import daily_partitions, partition_days, single_run
from lakehouse.contracts import contract_path, verify_contract
from lakehouse.quarantine import stage_predicate
from lakehouse.silver import CLEANERS, Cleaned
from resources.k8s import SPARK_STEP_POD
from resources.lakehouse import LakehouseResource
from resources.spark import SparkResource, arrow_to_spark

TABLES = tuple(CLEANERS)  # transactions, fraud_reports
CONTRACT = "soda_contract"
# One step builds all three tables from both bronze tables, so all three declare both: a
# backfill's targeted partitions must then be the same for every key of this multi-asset
# (with different deps Dagster 1.13 refuses UI backfills of bronze + silver).
BRONZE = [keys.BRONZE_TRANSACTIONS, keys.BRONZE_FRAUD_REPORTS]
RECONCILES = "reconciles_with_bronze"


def _reconciliation(table: str, bronze_rows: int, cleaned: Cleaned) -> dg.AssetCheckResult:
    accounted = cleaned.valid.num_rows + cleaned.rejected.num_rows + cleaned.duplicates
    return dg.AssetCheckResult(
        asset_key=keys.silver(table),
        check_name=RECONCILES,
        passed=accounted == bronze_rows,
        severity=dg.AssetCheckSeverity.ERROR,
        description="bronze rows = silver rows + quarantined rows + duplicates dropped",
        metadata={
            "bronze_rows": bronze_rows,
            "silver_rows": cleaned.valid.num_rows,
            "quarantined_rows": cleaned.rejected.num_rows,
            "duplicates_dropped": cleaned.duplicates,
        },
    )


@dg.multi_asset(
    name="silver_tables",
    specs=[
        dg.AssetSpec(
            keys.silver("transactions"),
            deps=BRONZE,
            kinds={"spark", "delta"},
            description="Typed, validated card transactions, one row per transaction_id.",
        ),
        dg.AssetSpec(
            keys.silver("fraud_reports"),
            deps=BRONZE,
            kinds={"spark", "delta"},
            description="Typed, validated chargebacks, one row per disputed transaction_id.",
        ),
        dg.AssetSpec(
            keys.QUARANTINE,
            deps=BRONZE,
            kinds={"spark", "delta"},
            description="Every rejected row or landing file with its stage, source and reason.",
        ),
    ],
    check_specs=[
        *[
            dg.AssetCheckSpec(CONTRACT, asset=key, blocking=True, description="Soda contract")
            for key in (keys.silver("transactions"), keys.silver("fraud_reports"), keys.QUARANTINE)
        ],
        *[
            dg.AssetCheckSpec(
                RECONCILES,
                asset=keys.silver(t),
                blocking=True,
                description="bronze rows = silver + quarantined + duplicates",
            )
            for t in TABLES
        ],
    ],
    group_name="silver",
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    can_subset=False,
    op_tags=SPARK_STEP_POD,
)
def silver_tables(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource, spark: SparkResource
):
    """Bronze to silver in one Spark session for the whole partition range."""
    started = time.perf_counter()
    start, end = partition_days(context)
    with spark.session() as session:
        rejected = []
        for table in TABLES:
            bronze = lakehouse.read("bronze", table, start, end)
            cleaned = CLEANERS[table](arrow_to_spark(session, bronze))
            contract = verify_contract(
                contract_path("silver", table),
                f"silver_{table}",
                cleaned.valid,
                variables={"min_rows": "1" if bronze.num_rows else "0"},
            )
            yield from audited(contract, keys.silver(table), start, end)
            write = lakehouse.overwrite("silver", table, cleaned.valid, start, end)
            rejected.append(cleaned.rejected)
            reasons = Counter(cleaned.rejected.column("reason").to_pylist())
            context.log.info(
                f"silver/{table}: {bronze.num_rows:,} bronze rows -> {write.rows:,} valid, "
                f"{cleaned.rejected.num_rows:,} quarantined, {cleaned.duplicates:,} duplicates"
            )
            yield dg.MaterializeResult(
                asset_key=keys.silver(table),
                metadata={
                    **delta_metadata(write, cleaned.valid.schema, start, end),
                    "bronze_rows": bronze.num_rows,
                    "quarantined_rows": cleaned.rejected.num_rows,
                    "duplicates_dropped": cleaned.duplicates,
                    "quarantine_reasons": counts_table(reasons, "reason"),
                },
                check_results=[
                    contract_check_result(contract, keys.silver(table)),
                    _reconciliation(table, bronze.num_rows, cleaned),
                ],
            )
    quarantined = pa.concat_tables(rejected)
    contract = verify_contract(
        contract_path("silver", "quarantine"), "silver_quarantine", quarantined
    )
    yield from audited(contract, keys.QUARANTINE, start, end)
    write = lakehouse.overwrite(
        "silver", "quarantine", quarantined, start, end, stage_predicate("silver")
    )
    reasons = Counter(
        f"{t}: {r}"
        for t, r in zip(
            quarantined.column("source_table").to_pylist(),
            quarantined.column("reason").to_pylist(),
            strict=True,
        )
    )
    yield dg.MaterializeResult(
        asset_key=keys.QUARANTINE,
        metadata={
            **delta_metadata(write, quarantined.schema, start, end),
            "reasons": counts_table(reasons, "table: reason"),
            "duration_s": round(time.perf_counter() - started, 2),
        },
        check_results=[contract_check_result(contract, keys.QUARANTINE)],
    )
