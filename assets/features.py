"""Features: the Feast registry (apply), the online store (materialize per partition) and its
freshness check."""

import time

import dagster as dg

from assets import keys
from assets.partitions import daily_partitions, partition_days, single_run
from features.online_store import GOLD_TABLE_OF_VIEW
from resources.feast import FeastResource
from settings.secrets import redacted

GOLD_FEATURES = [keys.gold(table) for table in GOLD_TABLE_OF_VIEW.values()]


@dg.asset(
    key=keys.FEAST_REGISTRY,
    group_name="features",
    deps=GOLD_FEATURES,
    kinds={"feast"},
)
def feast_registry(context: dg.AssetExecutionContext, feast: FeastResource) -> dg.MaterializeResult:
    """Feast apply: entities, sources, feature views and services of feature_repo/."""
    started = time.perf_counter()
    from features.online_store import SourceProblem, prepare_sources

    contents = feast.definitions()
    try:
        prepare_sources(contents)
    except SourceProblem as problem:
        raise dg.Failure(str(problem)) from None
    store = feast.store()
    store.apply(
        [
            *contents.entities,
            *contents.data_sources,
            *contents.feature_views,
            *contents.feature_services,
        ]
    )
    services = {s.name: sum(len(p.features) for p in s.feature_view_projections)
                for s in contents.feature_services}  # fmt: skip
    context.log.info(f"applied {len(contents.feature_views)} feature views, services {services}")
    return dg.MaterializeResult(
        metadata={
            "feature_views": dg.MetadataValue.md(
                "| view | entities | features | ttl |\n|---|---|---|---|\n"
                + "\n".join(
                    f"| {v.name} | {', '.join(v.entities)} | {len(v.features)} | {v.ttl} |"
                    for v in sorted(contents.feature_views, key=lambda v: v.name)
                )
            ),
            "feature_services": services,
            "entities": sorted(e.name for e in contents.entities),
            "registry": redacted(feast.registry),
            "duration_s": round(time.perf_counter() - started, 2),
        }
    )


@dg.asset(
    key=keys.ONLINE_STORE,
    group_name="features",
    deps=[keys.FEAST_REGISTRY, keys.MERCHANT_FRAUD_REPORTS, *GOLD_FEATURES],
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    kinds={"feast", "sqlite"},
    check_specs=[
        dg.AssetCheckSpec(
            "online_offline_parity",
            asset=keys.ONLINE_STORE,
            description="Online values equal the newest offline (gold) values, within 1e-6",
        )
    ],
)
def online_store(context: dg.AssetExecutionContext, feast: FeastResource) -> dg.MaterializeResult:
    """The partition's daily features and merchant report counts, into the online store."""
    from features.online_store import materialize_days

    started = time.perf_counter()
    start, end = partition_days(context)
    done = materialize_days(feast.store(), start, end)
    window_start, window_end = done.window
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name="online_offline_parity",
                passed=done.mismatches == 0,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"entities_checked": done.checked, "mismatched_values": done.mismatches},
            )
        ],
        metadata={
            "dagster/row_count": sum(done.rows_per_view.values()),
            "rows_per_view": done.rows_per_view,
            "merchants_with_new_report_counts": done.report_merchants,
            "window": f"{window_start.isoformat()} .. {window_end.isoformat()}",
            "newest_feature_timestamp": done.newest.isoformat()
            if done.newest is not None
            else "none",
            "online_store": redacted(feast.online_store),
            "duration_s": round(time.perf_counter() - started, 2),
        },
    )


@dg.asset_check(
    asset=keys.ONLINE_STORE,
    name="fresh_within_ttl",
    description="The newest online value of each daily view is younger than the view's TTL",
)
def online_store_fresh(feast: FeastResource) -> dg.AssetCheckResult:
    """Reads the online store itself: per view, the newest value's age and how many entities
    hold a value older than the TTL (or none), as a lookup at this moment would see them."""
    from features.online_store import freshness

    views = freshness(feast.store())
    stale_views = [name for name, view in views.items() if view["stale"]]
    return dg.AssetCheckResult(
        passed=not stale_views,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"stale: {', '.join(stale_views)} (newest value older than the TTL)"
            if stale_views
            else "every daily view has a value younger than its TTL"
        ),
        metadata={
            "stale_entities": sum(v["stale_entities"] for v in views.values()),
            "views": dg.MetadataValue.md(
                "| view | entities | stale | newest value age (h) | ttl (h) |\n"
                "|---|---|---|---|---|\n"
                + "\n".join(
                    f"| {n} | {v['entities']:,} | {v['stale_entities']:,} | {v['newest_age_h']} "
                    f"| {v['ttl_h']:g} |"
                    for n, v in views.items()
                )
            ),
        },
    )
