"""Materialize a selection of assets for a day range in this process (a benchmark's unit of work).

python -m bench.run_layer --select 'group:silver' --start 2026-01-01 --end 2026-01-30
python -m bench.run_layer --select 'key:features/training_set' --config maturity_days=0
"""

import argparse
import sys

import dagster as dg


def _config(pairs: list[str], selection) -> dict:
    """`name=value` pairs as the config of every selected asset's op (values parsed as JSON)."""
    import json

    if not pairs:
        return {}
    values = {}
    for pair in pairs:
        name, _, raw = pair.partition("=")
        values[name] = json.loads(raw)
    return {"ops": {"__".join(key.path): {"config": values} for key in selection}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--select", required=True, help="a Dagster asset selection string")
    parser.add_argument("--start", help="first day (partitioned assets)")
    parser.add_argument("--end", help="last day (partitioned assets)")
    parser.add_argument("--config", action="append", default=[], help="name=value, repeatable")
    args = parser.parse_args()

    from definitions import defs

    graph = defs.resolve_asset_graph()
    selection = dg.AssetSelection.from_string(args.select).resolve(graph)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=selection)
    tags = {}
    if args.start:
        tags = {
            "dagster/asset_partition_range_start": args.start,
            "dagster/asset_partition_range_end": args.end or args.start,
        }
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        tags=tags,
        run_config={
            "loggers": {"console": {"config": {"log_level": "ERROR"}}},
            **_config(args.config, selection),
        },
        raise_on_error=False,
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
