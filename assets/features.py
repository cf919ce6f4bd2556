"""Features: the Feast registry (apply), the online store (materialize per partition) and its
freshness check."""

import datetime as dt
import time

import dagster as dg
import pyarrow.compute as pc

from assets import keys
from assets.partitions import daily_partitions, partition_days, single_run
from assets.velocity import velocity_schema
from features.offline import source_keys
from lakehouse.delta import ALL_DAYS, overwrite_days, read_days, table_exists
from resources.feast import FeastResource

# The views fed by gold (not by pushes), each with its gold table.
GOLD_TABLE_OF_VIEW = {
    "customer_daily": "customer_daily_features",
    "merchant_daily": "merchant_daily_features",
    "customer_device": "customer_device_daily_features",
    "customer_country": "customer_country_daily_features",
}
BATCH_VIEWS = tuple(GOLD_TABLE_OF_VIEW)
GOLD_FEATURES = [keys.gold(table) for table in GOLD_TABLE_OF_VIEW.values()]


def _missing_columns(view, join_keys: list[str]) -> list[str]:
    """Columns a view needs that its Delta source lacks (entity keys, timestamp, features)."""
    from deltalake import DeltaTable

    source = view.batch_source
    needed = [*join_keys, source.timestamp_field, *(f.name for f in view.features)]
    present = set(DeltaTable(source.path).schema().to_arrow().names)
    return [c for c in needed if c not in present]


def _create_push_history(view, join_key: str) -> None:
    """An empty Delta table for a push source's offline history, so Feast can read it before
    the first velocity run or stream write."""
    empty = velocity_schema(join_key).empty_table()
    overwrite_days(view.batch_source.path, empty, dt.date(2000, 1, 1), dt.date(2000, 1, 1))


@dg.asset(
    key=keys.FEAST_REGISTRY,
    group_name="features",
    deps=GOLD_FEATURES,
    kinds={"feast"},
)
def feast_registry(context: dg.AssetExecutionContext, feast: FeastResource) -> dg.MaterializeResult:
    """Feast apply: entities, sources, feature views and services of feature_repo/."""
    started = time.perf_counter()
    contents = feast.definitions()
    # A parsed (not yet applied) view knows its entities' names, not their join keys.
    join_key_of = {entity.name: entity.join_key for entity in contents.entities}
    for view in contents.feature_views:
        join_keys = [join_key_of[name] for name in view.entities]
        if not table_exists(view.batch_source.path):
            if view.name in BATCH_VIEWS:
                raise dg.Failure(f"{view.name}: no Delta table at {view.batch_source.path}")
            [velocity_key] = join_keys
            _create_push_history(view, velocity_key)
        missing = _missing_columns(view, join_keys)
        if missing:
            raise dg.Failure(
                f"feature view {view.name}: source {view.batch_source.path} lacks "
                f"column(s) {missing}; nothing was applied"
            )
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
            "registry": feast.registry,
            "duration_s": round(time.perf_counter() - started, 2),
        }
    )


def source_frame(view, entities=None):
    """A view's source as Feast sees it (pandas, its time column as `feature_timestamp`), read
    from its Delta path: every row, or only the rows of the `entities` given (a frame holding
    the view's join keys)."""
    only = None
    if entities is not None:
        for key in view.join_keys:
            match = pc.field(key).isin(entities[key].unique().tolist())
            only = match if only is None else only & match
    frame = read_days(view.batch_source.path, *ALL_DAYS, filter_expression=only).to_pandas()
    frame = frame.rename(columns={view.batch_source.timestamp_field: "feature_timestamp"})
    if entities is None or len(view.join_keys) == 1:
        return frame
    return frame.merge(entities[view.join_keys].drop_duplicates(), on=view.join_keys)


def _parity(store, view, gold, window_start, window_end, sample: int = 200) -> tuple[int, int]:
    """(mismatched values, entities checked): online values of a sample of entities whose
    newest `gold` row (pandas) falls in the materialized window, against that row."""
    keys = view.join_keys
    newest = gold.sort_values("feature_timestamp").groupby(keys).tail(1)
    newest = newest[
        (newest.feature_timestamp >= window_start) & (newest.feature_timestamp < window_end)
    ]
    newest = newest.sample(n=min(sample, len(newest)), random_state=0)
    if newest.empty:
        return 0, 0
    features = [f.name for f in view.features]
    online = store.get_online_features(
        features=[f"{view.name}:{f}" for f in features],
        entity_rows=newest[keys].to_dict("records"),
    ).to_df()
    mismatches = 0
    for feature in features:
        got = online[feature].astype("float64").to_numpy()
        want = newest[feature].astype("float64").to_numpy()
        mismatches += int(((abs(got - want) > 1e-6) | (got != got)).sum())
    return mismatches, len(newest)


@dg.asset(
    key=keys.ONLINE_STORE,
    group_name="features",
    deps=[keys.FEAST_REGISTRY, *GOLD_FEATURES],
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
    """Feast materialize of the partition's daily features into the online store."""
    started = time.perf_counter()
    start, end = partition_days(context)
    store = feast.store()
    views = [store.get_feature_view(name) for name in BATCH_VIEWS]
    gold = {view.name: source_frame(view) for view in views}
    # Features of day D carry feature_timestamp = end of D (D+1 00:00 UTC).
    window_start = dt.datetime.combine(start + dt.timedelta(days=1), dt.time(), dt.UTC)
    window_end = dt.datetime.combine(end + dt.timedelta(days=2), dt.time(), dt.UTC)
    # SQLite keeps the last value written, not the newest: a backfill of old days must not
    # leave old values online, so the window always runs up to the newest feature known.
    for frame in gold.values():
        if len(frame):
            newest_known = frame.feature_timestamp.max().to_pydatetime()
            window_end = max(window_end, newest_known + dt.timedelta(seconds=1))
    store.materialize(window_start, window_end, feature_views=list(BATCH_VIEWS))
    in_range = {
        name: frame[(frame.day >= start) & (frame.day <= end)] for name, frame in gold.items()
    }
    rows = {name: len(frame) for name, frame in in_range.items()}
    newest = max((f.feature_timestamp.max() for f in in_range.values() if len(f)), default=None)
    parity = [_parity(store, view, gold[view.name], window_start, window_end) for view in views]
    mismatches, checked = (sum(p[i] for p in parity) for i in (0, 1))
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name="online_offline_parity",
                passed=mismatches == 0,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"entities_checked": checked, "mismatched_values": mismatches},
            )
        ],
        metadata={
            "dagster/row_count": sum(rows.values()),
            "rows_per_view": rows,
            "window": f"{window_start.isoformat()} .. {window_end.isoformat()}",
            "newest_feature_timestamp": newest.isoformat() if newest is not None else "none",
            "online_store": feast.online_store,
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
    from features.lookup import OnlineFeatures

    store = feast.store()
    now = time.time()
    views, stale_views = {}, []
    for name in BATCH_VIEWS:
        view = store.get_feature_view(name)
        entities = source_keys(view).to_dict("records")
        lookup = OnlineFeatures.for_views(store, [name])
        stamps = [
            stamp
            for start in range(0, len(entities), 1000)
            for stamp in lookup.event_times(entities[start : start + 1000])[name]
        ]
        ttl = view.ttl.total_seconds()
        known = [s for s in stamps if s is not None]
        age_h = (now - max(known)) / 3600 if known else None
        stale = sum(s is None or now - s > ttl for s in stamps)
        views[name] = {"entities": len(stamps), "stale_entities": stale,
                       "newest_age_h": None if age_h is None else round(age_h, 1),
                       "ttl_h": ttl / 3600}  # fmt: skip
        if age_h is None or age_h * 3600 > ttl:
            stale_views.append(name)
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
