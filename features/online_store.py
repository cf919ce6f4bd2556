"""The online store's daily views: which gold table feeds each, their sources checked before
`feast apply`, the materialization window of a day range, the parity of online values with gold,
and each view's freshness as a lookup would see it."""

import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow.compute as pc

from features import report_decay
from features.offline import source_keys
from lakehouse.delta import ALL_DAYS, overwrite_days, read_days, table_exists

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.repo_contents import RepoContents

# The views fed by gold (not by pushes), each with its gold table.
GOLD_TABLE_OF_VIEW = {
    "customer_daily": "customer_daily_features",
    "merchant_daily": "merchant_daily_features",
    "customer_device": "customer_device_daily_features",
    "customer_country": "customer_country_daily_features",
}
BATCH_VIEWS = tuple(GOLD_TABLE_OF_VIEW)


class SourceProblem(ValueError):
    """A feature view's source is missing or lacks columns: nothing may be applied."""


def prepare_sources(contents: "RepoContents") -> None:
    """Check every view's Delta source before `feast apply`: a daily view's must exist, a push
    view's is created empty; each must hold the view's columns. Raises SourceProblem."""
    # A parsed (not yet applied) view knows its entities' names, not their join keys.
    join_key_of = {entity.name: entity.join_key for entity in contents.entities}
    for view in contents.feature_views:
        join_keys = [join_key_of[name] for name in view.entities]
        if not table_exists(view.batch_source.path):
            if view.name in BATCH_VIEWS:
                raise SourceProblem(f"{view.name}: no Delta table at {view.batch_source.path}")
            _create_push_history(view, join_keys)
        missing = _missing_columns(view, join_keys)
        if missing:
            raise SourceProblem(
                f"feature view {view.name}: source {view.batch_source.path} lacks "
                f"column(s) {missing}; nothing was applied"
            )


def _missing_columns(view, join_keys: list[str]) -> list[str]:
    """Columns a view needs that its Delta source lacks (entity keys, timestamp, features)."""
    from deltalake import DeltaTable

    source = view.batch_source
    needed = [*join_keys, source.timestamp_field, *(f.name for f in view.features)]
    present = set(DeltaTable(source.path).schema().to_arrow().names)
    return [c for c in needed if c not in present]


def _create_push_history(view, join_keys: list[str]) -> None:
    """An empty Delta table for a push source's offline history, so Feast can read it before
    the first history run or stream write: the view's join keys, features, event time and day,
    as the history assets write them."""
    import pyarrow as pa
    from feast.type_map import feast_value_type_to_pa

    empty = pa.schema(
        [(key, pa.string()) for key in join_keys]
        + [(f.name, feast_value_type_to_pa(f.dtype.to_value_type())) for f in view.features]
        + [(view.batch_source.timestamp_field, pa.timestamp("us", tz="UTC")), ("day", pa.date32())]
    ).empty_table()
    overwrite_days(view.batch_source.path, empty, dt.date(2000, 1, 1), dt.date(2000, 1, 1))


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


def parity(store, view, gold, window_start, window_end, sample: int = 200) -> tuple[int, int]:
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


@dataclass(frozen=True)
class Materialized:
    window: tuple[dt.datetime, dt.datetime]
    rows_per_view: dict[str, int]  # gold rows of the day range
    newest: dt.datetime | None  # the newest feature timestamp of the day range
    mismatches: int  # online values unequal to gold, on a sample of entities
    checked: int
    report_merchants: int  # merchants whose report counts were written


def materialize_days(store: "FeatureStore", start: dt.date, end: dt.date) -> Materialized:
    """The daily views' values of days [start, end] into the online store, then their parity
    with gold on a sample of entities; and the merchants' report counts from `start` on."""
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
    # A view whose gold table is empty (a source without devices, say) has nothing to load.
    loaded = [name for name, frame in gold.items() if len(frame)]
    if loaded:
        store.materialize(window_start, window_end, feature_views=loaded)
    reports_written = write_report_counts(store, start)
    in_range = {
        name: frame[(frame.day >= start) & (frame.day <= end)] for name, frame in gold.items()
    }
    newest = max((f.feature_timestamp.max() for f in in_range.values() if len(f)), default=None)
    found = [parity(store, view, gold[view.name], window_start, window_end) for view in views]
    return Materialized(
        window=(window_start, window_end),
        rows_per_view={name: len(frame) for name, frame in in_range.items()},
        newest=newest,
        mismatches=sum(f[0] for f in found),
        checked=sum(f[1] for f in found),
        report_merchants=reports_written,
    )


def write_report_counts(store: "FeatureStore", start: dt.date) -> int:
    """Each merchant's report counts as of its last report in the history from `start` on,
    written online unless the online value is as new (the report worker pushed a later report:
    SQLite, unlike Redis, would keep whatever is written last); how many merchants."""
    from features.lookup import OnlineFeatures

    view = store.get_feature_view(report_decay.VIEW)
    history = read_days(view.batch_source.path, start, ALL_DAYS[1]).to_pandas()
    if history.empty:
        return 0
    newest = history.sort_values("event_timestamp", kind="stable").groupby(report_decay.KEY).tail(1)
    stored = OnlineFeatures.for_views(store, [report_decay.VIEW]).stored(newest)
    online_last = [s[1][report_decay.SINCE] if s else -1.0 for s in stored[report_decay.VIEW]]
    newer = newest[newest[report_decay.SINCE].to_numpy() > online_last]
    if len(newer):
        store.write_to_online_store(report_decay.VIEW, newer.drop(columns="day"))
    return len(newer)


def freshness(store: "FeatureStore") -> dict[str, dict]:
    """Per daily view, read from the online store itself: its entities, those holding a value
    older than the TTL (or none), the newest value's age and the TTL in hours, and whether the
    newest value is older than the TTL (the view is stale; a view without entities is not)."""
    from features.lookup import OnlineFeatures

    now = time.time()
    views = {}
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
        views[name] = {
            "entities": len(stamps),
            "stale_entities": sum(s is None or now - s > ttl for s in stamps),
            "newest_age_h": None if age_h is None else round(age_h, 1),
            "ttl_h": ttl / 3600,
            # No entity at all: the data has no such field (no devices, say), nothing to age.
            "stale": bool(stamps) and (age_h is None or age_h * 3600 > ttl),
        }
    return views
