"""The training set's rows: labelled transactions joined point-in-time to a feature service's
features, checked on a sample against Feast's file offline store, and split by card."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from features.offline import file_store_features, joined_at, point_in_time_join
from features.views import fill_missing, service_views
from lakehouse.training import holdout_split

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

ENTITY_COLUMNS = [
    "transaction_id", "event_timestamp", "day", "customer_id", "merchant_id", "card_id",
    "device_id", "merchant_category", "merchant_country", "channel", "amount_usd", "label",
    "weight", "reported_at",
]  # fmt: skip


class SplitRefused(ValueError):
    """The rows cannot be split as asked (too few cards or days for the held-out shares)."""


@dataclass(frozen=True)
class TrainingRows:
    rows: "pd.DataFrame"  # in time order, with a `split` column
    violations: int  # sampled rows whose features differ from Feast's point-in-time retrieval
    checked: int


def build(
    store: "FeatureStore",
    labelled: pa.Table,
    service: str,
    validation_share: float,
    test_share: float,
    holdout_days: float,
    check_sample: int,
) -> TrainingRows:
    """`labelled` joined to `service`'s features at each row's time, missing values as serving
    sees them, split by card (`lakehouse.training.holdout_split`; SplitRefused when it cannot)."""
    joined, violations, checked = join_features(
        store, labelled.select(ENTITY_COLUMNS).to_pandas(), service, check_sample
    )
    try:
        split = holdout_split(
            pa.chunked_array([pa.array(joined["event_timestamp"])]),
            joined["card_id"].to_numpy(),
            validation_share,
            test_share,
            holdout_days,
        )
    except ValueError as refused:
        raise SplitRefused(str(refused)) from None
    joined["split"] = split.to_pandas()
    return TrainingRows(joined, violations, checked)


def join_features(
    store: "FeatureStore", rows: "pd.DataFrame", service: str, check_sample: int = 0
) -> tuple["pd.DataFrame", int, int]:
    """(`rows` with `service`'s features at each row's time, missing values as serving sees
    them, in time order; violations and rows checked of a sample against Feast's retrieval)."""
    specs = service_views(store, service)
    views = [store.get_feature_view(spec.name) for spec in specs]
    joined = point_in_time_join(store, rows, views)
    violations, checked = (
        point_in_time_violations(store, joined, views, check_sample) if check_sample else (0, 0)
    )
    joined = fill_missing(joined, specs)
    joined = joined.sort_values(["event_timestamp", "transaction_id"]).reset_index(drop=True)
    return joined, violations, checked


def missing_per_view(rows: "pd.DataFrame") -> dict[str, int]:
    """Rows with no value of a view (its defaults stand in), per view."""
    return {
        c.removesuffix("__missing"): int(rows[c].sum()) for c in rows if c.endswith("__missing")
    }


def split_table(rows: "pd.DataFrame") -> str:
    """Rows, fraud rate and time range per split, as a markdown table."""
    by_split = rows.groupby("split")["label"].agg(["count", "mean"])
    return "| split | rows | fraud rate | from | to |\n|---|---|---|---|---|\n" + "\n".join(
        f"| {s} | {int(by_split.loc[s, 'count']):,} | {by_split.loc[s, 'mean']:.3%} "
        f"| {rows.loc[rows.split == s, 'event_timestamp'].min()} "
        f"| {rows.loc[rows.split == s, 'event_timestamp'].max()} |"
        for s in by_split.index
    )


def point_in_time_violations(store, joined, views, sample_size: int) -> tuple[int, int]:
    """(violations, rows checked): a sample of joined rows recomputed by Feast's file store
    (an independent implementation of the point-in-time rule); a value that differs (from after
    the row's time, stale, or missing) is a violation."""
    import numpy as np

    sample = joined.sample(n=min(sample_size, len(joined)), random_state=0)
    wrong = np.zeros(len(sample), dtype=bool)
    for view in views:
        at = sample[[*view.join_keys, "event_timestamp"]]
        at = at.assign(event_timestamp=at.event_timestamp - joined_at(view))
        expected = file_store_features(store, at, [view])
        for feature in view.features:
            column = f"{view.name}__{feature.name}"
            got = sample[column].astype("float64").to_numpy()
            want = expected[column].astype("float64").to_numpy()
            wrong |= ~((np.abs(got - want) <= 1e-6) | (np.isnan(got) & np.isnan(want)))
    return int(wrong.sum()), len(sample)
