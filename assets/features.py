"""Features: the Feast registry (apply) and the online store (materialize per partition)."""

import datetime as dt
import time

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from assets.partitions import daily_partitions, partition_days, single_run
from assets.velocity import VELOCITY_KEYS, velocity_schema
from lakehouse.delta import overwrite_days, read_days, table_exists
from resources.feast import FeastResource, historical_features
from resources.lakehouse import LakehouseResource

GOLD_FEATURES = [
    dg.AssetKey(["gold", "customer_daily_features"]),
    dg.AssetKey(["gold", "merchant_daily_features"]),
]
BATCH_VIEWS = ("customer_daily", "merchant_daily")  # the views fed by gold, not by pushes
FAR = (dt.date(1970, 1, 1), dt.date(2999, 12, 31))


def _missing_columns(view, join_key: str) -> list[str]:
    """Columns a view needs that its Delta source lacks (entity key, timestamp, features)."""
    from deltalake import DeltaTable

    source = view.batch_source
    needed = [join_key, source.timestamp_field, *(f.name for f in view.features)]
    present = set(DeltaTable(source.path).schema().to_arrow().names)
    return [c for c in needed if c not in present]


def _create_push_history(view, join_key: str) -> None:
    """An empty Delta table for a push source's offline history, so Feast can read it before
    the first velocity run or stream write."""
    empty = velocity_schema(join_key).empty_table()
    overwrite_days(view.batch_source.path, empty, dt.date(2000, 1, 1), dt.date(2000, 1, 1))


@dg.asset(
    key=["features", "feast_registry"],
    group_name="features",
    deps=GOLD_FEATURES,
    kinds={"feast"},
)
def feast_registry(context: dg.AssetExecutionContext, feast: FeastResource) -> dg.MaterializeResult:
    """Feast apply: entities, sources, feature views and services of feature_repo/."""
    started = time.perf_counter()
    contents = feast.definitions()
    join_keys = {entity.name: entity.join_key for entity in contents.entities}
    for view in contents.feature_views:
        [join_key] = (join_keys[name] for name in view.entities)
        if not table_exists(view.batch_source.path):
            if view.name in BATCH_VIEWS:
                raise dg.Failure(f"{view.name}: no Delta table at {view.batch_source.path}")
            _create_push_history(view, join_key)
        missing = _missing_columns(view, join_key)
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


def _source_frame(view):
    """A view's whole source as Feast sees it (pandas, its time column as `feature_timestamp`),
    read from its Delta path."""
    frame = read_days(view.batch_source.path, *FAR).to_pandas()
    return frame.rename(columns={view.batch_source.timestamp_field: "feature_timestamp"})


def _parity(store, view, gold, window_start, window_end, sample: int = 200) -> tuple[int, int]:
    """(mismatched values, entities checked): online values of a sample of entities whose
    newest `gold` row (pandas) falls in the materialized window, against that row."""
    key = view.join_keys[0]
    newest = gold.sort_values("feature_timestamp").groupby(key).tail(1)
    newest = newest[
        (newest.feature_timestamp >= window_start) & (newest.feature_timestamp < window_end)
    ]
    newest = newest.sample(n=min(sample, len(newest)), random_state=0)
    if newest.empty:
        return 0, 0
    features = [f.name for f in view.features]
    online = store.get_online_features(
        features=[f"{view.name}:{f}" for f in features],
        entity_rows=[{key: k} for k in newest[key]],
    ).to_df()
    mismatches = 0
    for feature in features:
        got = online[feature].astype("float64").to_numpy()
        want = newest[feature].astype("float64").to_numpy()
        mismatches += int(((abs(got - want) > 1e-6) | (got != got)).sum())
    return mismatches, len(newest)


@dg.asset(
    key=["features", "online_store"],
    group_name="features",
    deps=[dg.AssetKey(["features", "feast_registry"]), *GOLD_FEATURES],
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    kinds={"feast", "sqlite"},
    check_specs=[
        dg.AssetCheckSpec(
            "online_offline_parity",
            asset=dg.AssetKey(["features", "online_store"]),
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
    gold = {view.name: _source_frame(view) for view in views}
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


def _entities(view) -> list[str]:
    """Every entity a batch view's Delta source has rows for."""
    from deltalake import DeltaTable

    key = view.join_keys[0]
    keys = DeltaTable(view.batch_source.path).to_pyarrow_dataset().to_table(columns=[key])
    return pc.unique(keys.column(key)).to_pylist()


@dg.asset_check(
    asset=dg.AssetKey(["features", "online_store"]),
    name="fresh_within_ttl",
    description="The newest online value of each daily view is younger than the view's TTL",
)
def online_store_fresh(feast: FeastResource) -> dg.AssetCheckResult:
    """Reads the online store itself: per view, the newest value's age and how many entities
    hold a value older than the TTL (or none), as a lookup at this moment would see them."""
    from ml.online_features import OnlineFeatures

    store = feast.store()
    now = time.time()
    views, stale_views = {}, []
    for name in BATCH_VIEWS:
        view = store.get_feature_view(name)
        entities = _entities(view)
        lookup = OnlineFeatures.for_views(store, [name])
        stamps = [
            stamp
            for start in range(0, len(entities), 1000)
            for stamp in lookup.event_times(
                [{view.join_keys[0]: e} for e in entities[start : start + 1000]]
            )[name]
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


SERVICE = "fraud_model_v1"
# Velocity describes the card's or customer's activity before the transaction: the value pushed
# for the transaction itself (which counts it) must not be joined to it.
JUST_BEFORE = dt.timedelta(microseconds=1)


def _joined_at(view) -> dt.timedelta:
    """How long before a row's transaction time a view's features must be known."""
    return JUST_BEFORE if view.name not in BATCH_VIEWS else dt.timedelta(0)


def _point_in_time_join(store, entities, views):
    """`entities` with every view's features as known at (or just before) each row's time."""
    joined = entities
    for view in views:
        at = entities.assign(event_timestamp=entities.event_timestamp - _joined_at(view))
        features = historical_features(store, at, [view])
        columns = [c for c in features.columns if c.startswith(f"{view.name}__")]
        joined = joined.assign(**{c: features[c].to_numpy() for c in columns})
    return joined


def _point_in_time_violations(joined, views, sample_size: int) -> tuple[int, int]:
    """(violations, rows checked): a sample of joined rows recomputed from the sources."""
    from lakehouse.training import point_in_time_violations

    sample = joined.sample(n=min(sample_size, len(joined)), random_state=0)
    violations = 0
    for view in views:
        at = sample.assign(event_timestamp=sample.event_timestamp - _joined_at(view))
        violations += point_in_time_violations(
            at, _source_frame(view), view.join_keys[0], view.name,
            [f.name for f in view.features], view.ttl,
        )  # fmt: skip
    return violations, len(sample)


class TrainingSetConfig(dg.Config):
    """Label maturity and split of the training set."""

    maturity_days: int = 45  # a chargeback can arrive up to 45 days after the transaction
    cutoff: str | None = None  # ISO time the labels are read at; default: end of newest day
    validation_share: float = 0.15
    test_share: float = 0.15
    pit_check_sample: int = 2000


ENTITY_COLUMNS = [
    "transaction_id", "event_timestamp", "day", "customer_id", "merchant_id", "card_id",
    "merchant_category", "merchant_country", "channel", "amount_usd", "label", "reported_at",
]  # fmt: skip


@dg.asset(
    key=["features", "training_set"],
    group_name="features",
    deps=[
        dg.AssetKey(["features", "feast_registry"]),
        dg.AssetKey(["gold", "transaction_labels"]),
        *VELOCITY_KEYS.values(),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "point_in_time_correct",
            asset=dg.AssetKey(["features", "training_set"]),
            blocking=True,
            description="No feature value comes from after its row's transaction time",
        )
    ],
    kinds={"feast", "delta"},
)
def training_set(
    context: dg.AssetExecutionContext,
    config: TrainingSetConfig,
    feast: FeastResource,
    lakehouse: LakehouseResource,
):
    """Matured labels joined point-in-time to fraud_model_v1's features, split by time."""
    from lakehouse.training import mature_labels, temporal_split
    from ml.online_features import fill_missing, service_views

    started = time.perf_counter()
    labels = lakehouse.read("gold", "transaction_labels", *FAR)
    if labels.num_rows == 0:
        raise dg.Failure("gold/transaction_labels is empty: nothing to train on")
    cutoff = (
        dt.datetime.fromisoformat(config.cutoff)
        if config.cutoff
        else dt.datetime.combine(
            max(labels.column("day").to_pylist()) + dt.timedelta(days=1), dt.time(), dt.UTC
        )
    )
    matured = mature_labels(labels, cutoff, config.maturity_days)
    if matured.num_rows == 0:
        raise dg.Failure(
            f"no label has matured by {cutoff.isoformat()} with a {config.maturity_days}-day "
            "window: simulate more days or lower maturity_days"
        )
    store = feast.store()
    views = [store.get_feature_view(v.name) for v in service_views(store, SERVICE)]
    entities = matured.select(ENTITY_COLUMNS).to_pandas()
    joined = _point_in_time_join(store, entities, views)
    violations, checked = _point_in_time_violations(joined, views, config.pit_check_sample)
    joined = fill_missing(joined, service_views(store, SERVICE))
    joined = joined.sort_values(["event_timestamp", "transaction_id"]).reset_index(drop=True)
    joined["split"] = temporal_split(
        pa.chunked_array([pa.array(joined["event_timestamp"])]),
        config.validation_share,
        config.test_share,
    ).to_pandas()
    data = pa.Table.from_pandas(joined, preserve_index=False)
    write = lakehouse.overwrite("features", "training_set", data, *FAR)
    by_split = joined.groupby("split")["label"].agg(["count", "mean"])
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(joined),
            "label_cutoff": cutoff.isoformat(),
            "maturity_days": config.maturity_days,
            "labels_read": labels.num_rows,
            "labels_matured": matured.num_rows,
            "feature_service": SERVICE,
            "feature_columns": sum("__" in c and not c.endswith("__missing") for c in joined),
            "rows_missing_a_view": dg.MetadataValue.json(
                {
                    c.removesuffix("__missing"): int(joined[c].sum())
                    for c in joined
                    if c.endswith("__missing")
                }
            ),
            "splits": dg.MetadataValue.md(
                "| split | rows | fraud rate | from | to |\n|---|---|---|---|---|\n"
                + "\n".join(
                    f"| {s} | {int(by_split.loc[s, 'count']):,} | {by_split.loc[s, 'mean']:.3%} "
                    f"| {joined.loc[joined.split == s, 'event_timestamp'].min()} "
                    f"| {joined.loc[joined.split == s, 'event_timestamp'].max()} |"
                    for s in by_split.index
                )
            ),
            "delta_version": write.version,
            "dagster/uri": write.uri,
            "duration_s": round(time.perf_counter() - started, 2),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="point_in_time_correct",
                passed=violations == 0,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"rows_checked": checked, "violations": violations},
            )
        ],
    )
