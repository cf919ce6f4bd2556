"""Materialize one layer for a day range in this process (a benchmark's unit of work)."""

import argparse
import sys

import dagster as dg


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--group", required=True, choices=["bronze", "silver", "gold"])
    parser.add_argument("--start", required=True)
    parser.add_argument("--end", required=True)
    args = parser.parse_args()

    from definitions import defs

    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=dg.AssetSelection.groups(args.group).resolve(defs.resolve_asset_graph())
    )
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        tags={
            "dagster/asset_partition_range_start": args.start,
            "dagster/asset_partition_range_end": args.end,
        },
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        raise_on_error=False,
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
