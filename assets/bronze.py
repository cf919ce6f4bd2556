"""Bronze: landing files as Delta, every field kept as text, plus where and when it came from."""

import time
from collections import Counter

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from assets import keys
from assets.metadata import counts_table, delta_metadata
from assets.partitions import daily_partitions, days_between, partition_days, single_run
from lakehouse.landing import SCHEMA_ERROR, SOURCES, LandingSource, read_landing_file
from lakehouse.quarantine import QUARANTINE_SCHEMA, rejected_file_rows, stage_predicate
from resources.lakehouse import LakehouseResource


def _replace_file_rejections(
    lakehouse: LakehouseResource, source: LandingSource, rejected: list[pa.Table], start, end
) -> int | None:
    """Put refused files in quarantine (stage bronze); clears old ones on a re-run."""
    data = pa.concat_tables(rejected) if rejected else QUARANTINE_SCHEMA.empty_table()
    predicate = stage_predicate("bronze", source.table)
    stale = 0
    if lakehouse.exists("silver", "quarantine"):
        stale = lakehouse.read(
            "silver",
            "quarantine",
            start,
            end,
            columns=["stage"],
            filter_expression=(pc.field("stage") == "bronze")
            & (pc.field("source_table") == source.table),
        ).num_rows
    if data.num_rows == 0 and stale == 0:
        return None  # nothing to write, nothing to clear: no empty commit
    return lakehouse.overwrite("silver", "quarantine", data, start, end, predicate).version


def build_bronze_asset(source: LandingSource) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.bronze(source.table),
        group_name="bronze",
        partitions_def=daily_partitions,
        backfill_policy=single_run,
        kinds={"delta", "python"},
        description=(
            f"Raw {source.table} from landing/{source.folder}/*{source.suffix} as Delta: "
            "fields as text, plus source file, line and ingestion time."
        ),
    )
    def bronze_asset(
        context: dg.AssetExecutionContext, lakehouse: LakehouseResource
    ) -> dg.MaterializeResult:
        started = time.perf_counter()
        start, end = partition_days(context)
        accepted, rejected, refused = [], [], []
        files = 0
        for day in days_between(start, end):
            for path in source.files_for_day(lakehouse.landing_path, day):
                files += 1
                read = read_landing_file(source, path, day)
                if read.rejection:
                    refused.append(f"{path.name}: {read.rejection.reason}")
                    rejected.append(
                        rejected_file_rows(
                            source.table,
                            day,
                            path.name,
                            read.rejection.reason,
                            read.rejection.lines,
                        )
                    )
                    context.log.error(f"refused {path}: {read.rejection.reason}")
                else:
                    accepted.append(read.rows)
        schema = source.bronze_schema()
        data = pa.concat_tables(accepted) if accepted else schema.empty_table()
        write = lakehouse.overwrite("bronze", source.table, data, start, end)
        quarantine_version = _replace_file_rejections(lakehouse, source, rejected, start, end)
        errors = Counter(e.split(",")[0] for e in data.column(SCHEMA_ERROR).drop_null().to_pylist())
        metadata = {
            **delta_metadata(write, schema, start, end),
            "landing_files": files,
            "rows_with_schema_errors": sum(errors.values()),
            "schema_errors": counts_table(errors, "schema error"),
            "duration_s": round(time.perf_counter() - started, 2),
        }
        if refused:
            raise dg.Failure(
                description=(
                    f"{len(refused)} landing file(s) refused and quarantined whole "
                    f"(silver/quarantine, stage=bronze): " + "; ".join(refused)
                ),
                metadata={**metadata, "quarantine_delta_version": quarantine_version},
            )
        context.log.info(f"bronze/{source.table}: {write.rows:,} rows from {files} files")
        return dg.MaterializeResult(metadata=metadata)

    return bronze_asset


bronze_assets = [build_bronze_asset(source) for source in SOURCES.values()]
