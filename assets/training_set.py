"""The training set: matured labels joined point-in-time to the model's features, split by time."""

import datetime as dt
import time

import dagster as dg
import pyarrow as pa

from assets.features import BATCH_VIEWS, source_frame
from assets.velocity import VELOCITY_KEYS
from lakehouse.delta import ALL_DAYS
from ml.feature_store import FEATURE_SERVICE as SERVICE
from resources.feast import FeastResource, historical_features
from resources.lakehouse import LakehouseResource

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
            at, source_frame(view, entities=sample), view.join_keys, view.name,
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
    "device_id", "merchant_category", "merchant_country", "channel", "amount_usd", "label",
    "reported_at",
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
    from lakehouse.training import label_cutoff, mature_labels, temporal_split
    from ml.online_features import fill_missing, service_views

    started = time.perf_counter()
    labels = lakehouse.read("gold", "transaction_labels", *ALL_DAYS)
    if labels.num_rows == 0:
        raise dg.Failure("gold/transaction_labels is empty: nothing to train on")
    cutoff = (
        dt.datetime.fromisoformat(config.cutoff)
        if config.cutoff
        else label_cutoff(labels.column("day"))
    )
    matured = mature_labels(labels, cutoff, config.maturity_days)
    if matured.num_rows == 0:
        raise dg.Failure(
            f"no label has matured by {cutoff.isoformat()} with a {config.maturity_days}-day "
            "window: simulate more days or lower maturity_days"
        )
    store = feast.store()
    specs = service_views(store, SERVICE)
    views = [store.get_feature_view(spec.name) for spec in specs]
    entities = matured.select(ENTITY_COLUMNS).to_pandas()
    joined = _point_in_time_join(store, entities, views)
    violations, checked = _point_in_time_violations(joined, views, config.pit_check_sample)
    joined = fill_missing(joined, specs)
    joined = joined.sort_values(["event_timestamp", "transaction_id"]).reset_index(drop=True)
    joined["split"] = temporal_split(
        pa.chunked_array([pa.array(joined["event_timestamp"])]),
        config.validation_share,
        config.test_share,
    ).to_pandas()
    data = pa.Table.from_pandas(joined, preserve_index=False)
    write = lakehouse.overwrite("features", "training_set", data, *ALL_DAYS)
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
