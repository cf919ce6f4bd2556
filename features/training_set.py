"""The training set's rows: labelled transactions joined point-in-time to a feature service's
features, checked on a sample against Feast's file offline store, and split by card."""

from collections.abc import Iterator
from dataclasses import dataclass, field
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


@dataclass
class SplitFigures:
    rows: int = 0
    frauds: int = 0
    first: object = None
    last: object = None


@dataclass
class TrainingSetBuild:
    """The training set's rows, chunk by chunk in time order (`chunks`), and what was seen
    of them so far: counts per split, rows missing each view, the point-in-time sample."""

    store: "FeatureStore"
    labelled: pa.Table  # in time order, with a `split` column
    service: str
    check_sample: int
    chunk_rows: int
    rows: int = 0
    chunks_joined: int = 0
    violations: int = 0  # sampled rows whose features differ from Feast's point-in-time retrieval
    checked: int = 0
    feature_columns: int = 0
    missing: dict[str, int] = field(default_factory=dict)
    splits: dict[str, SplitFigures] = field(default_factory=dict)

    def chunks(self) -> Iterator[pa.RecordBatch]:
        """The joined rows as Arrow batches of one schema (the labels' types for their own
        columns); after the last, the point-in-time check of a sample drawn from all of them."""
        import numpy as np
        import pandas as pd

        specs = service_views(self.store, self.service)
        views = [self.store.get_feature_view(spec.name) for spec in specs]
        total, schema, sampled = self.labelled.num_rows, None, []
        picks = np.sort(
            np.random.default_rng(0).choice(total, min(self.check_sample, total), replace=False)
        )
        for offset in range(0, total, self.chunk_rows):
            part = self.labelled.slice(offset, self.chunk_rows)
            # The join keeps the rows' order: row i of `raw` is label offset + i.
            raw = point_in_time_join(self.store, part.to_pandas(), views)
            here = picks[(picks >= offset) & (picks < offset + part.num_rows)] - offset
            sampled.append(raw.iloc[here])
            joined = fill_missing(raw, specs)
            if schema is None:
                schema = _schema(joined, self.labelled.schema)
                self.feature_columns = sum(
                    "__" in c and not c.endswith("__missing") for c in joined
                )
            self.rows, self.chunks_joined = self.rows + len(joined), self.chunks_joined + 1
            for view, count in missing_per_view(joined).items():
                self.missing[view] = self.missing.get(view, 0) + count
            for name, rows in joined.groupby("split"):
                figures = self.splits.setdefault(name, SplitFigures())
                figures.rows += len(rows)
                figures.frauds += int(rows["label"].sum())
                if figures.first is None:
                    figures.first = rows["event_timestamp"].iloc[0]
                figures.last = rows["event_timestamp"].iloc[-1]
            yield from pa.Table.from_pandas(joined, schema, preserve_index=False).to_batches()
        if picks.size:
            self.violations = point_in_time_violations(self.store, pd.concat(sampled), views)
            self.checked = int(picks.size)

    def split_table(self) -> str:
        """Rows, fraud rate and time range per split, as a markdown table."""
        return "| split | rows | fraud rate | from | to |\n|---|---|---|---|---|\n" + "\n".join(
            f"| {name} | {f.rows:,} | {f.frauds / f.rows:.3%} | {f.first} | {f.last} |"
            for name, f in sorted(self.splits.items())
        )


def _schema(joined: "pd.DataFrame", labels: pa.Schema) -> pa.Schema:
    """The joined rows' Arrow schema, the labels' own columns typed as the labels are (a chunk
    whose optional field has no value must not make it a null column)."""
    inferred = pa.Schema.from_pandas(joined, preserve_index=False)
    return pa.schema([labels.field(f.name) if f.name in labels.names else f for f in inferred])


def build(
    store: "FeatureStore",
    labelled: pa.Table,
    service: str,
    validation_share: float,
    test_share: float,
    holdout_days: float,
    check_sample: int,
    chunk_rows: int,
) -> TrainingSetBuild:
    """`labelled` split by card (`lakehouse.training.holdout_split`; SplitRefused when it
    cannot), in time order; its `chunks` join `service`'s features at each row's time,
    missing values as serving sees them."""
    rows = labelled.select(ENTITY_COLUMNS).sort_by(
        [("event_timestamp", "ascending"), ("transaction_id", "ascending")]
    )
    try:
        split = holdout_split(
            rows["event_timestamp"], rows["card_id"].to_numpy(),
            validation_share, test_share, holdout_days,
        )  # fmt: skip
    except ValueError as refused:
        raise SplitRefused(str(refused)) from None
    return TrainingSetBuild(store, rows.append_column("split", split), service, check_sample,
                            chunk_rows)  # fmt: skip


def join_features(store: "FeatureStore", rows: "pd.DataFrame", service: str) -> "pd.DataFrame":
    """`rows` with `service`'s features at each row's time, missing values as serving sees
    them, in time order."""
    specs = service_views(store, service)
    views = [store.get_feature_view(spec.name) for spec in specs]
    joined = fill_missing(point_in_time_join(store, rows, views), specs)
    return joined.sort_values(["event_timestamp", "transaction_id"]).reset_index(drop=True)


def missing_per_view(rows: "pd.DataFrame") -> dict[str, int]:
    """Rows with no value of a view (its defaults stand in), per view."""
    return {
        c.removesuffix("__missing"): int(rows[c].sum()) for c in rows if c.endswith("__missing")
    }


def point_in_time_violations(store, sample, views) -> int:
    """Joined rows recomputed by Feast's file store (an independent implementation of the
    point-in-time rule): how many have a value that differs (from after the row's time, stale,
    or missing)."""
    import numpy as np

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
    return int(wrong.sum())
