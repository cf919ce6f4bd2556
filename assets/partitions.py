"""Daily partitions shared by every layer, and the day range a run covers."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from settings.env import partitions_start

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=partitions_start().isoformat(), timezone="UTC"
)

# A multi-day backfill is one run: one Spark session, one dbt call for the whole range.
single_run = dg.BackfillPolicy.single_run()


def partition_days(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext):
    """First and last day (inclusive) of the partitions this run materializes."""
    window = context.partition_time_window
    return window.start.date(), (window.end - dt.timedelta(days=1)).date()


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def range_tags(start: dt.date, end: dt.date) -> dict[str, str]:
    """The run tags that make one run of days [start, end] (a single-run backfill)."""
    return {
        "dagster/asset_partition_range_start": start.isoformat(),
        "dagster/asset_partition_range_end": end.isoformat(),
    }


def rebuild_end(lakehouse, end: dt.date, lookahead_days: int) -> dt.date:
    """The last day a run of [.., end] rewrites: `end`, or the last later day within
    `lookahead_days` (the days after a day whose rows read it) that silver already holds. So a
    re-run of an old day, or day runs finishing out of order, leave every later day as one run
    of them all would."""
    if not lookahead_days:
        return end
    later = lakehouse.read(
        "silver", "transactions", end + dt.timedelta(days=1),
        end + dt.timedelta(days=lookahead_days), columns=["day"],
    )  # fmt: skip
    return max(later.column("day").to_pylist(), default=end)
