"""The windows monitoring compares: the day's logged inputs and scores, the champion's reference
window from its training set, and the fraud cards each let through. Read through any reader of
the lakehouse's tables (the Dagster resource, in the assets)."""

import datetime as dt
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.delta import ALL_DAYS
from ml.promotion import scores_of
from ml.registry import input_columns
from monitoring.drift_policy import DriftPolicy, MissedFrauds, missed_frauds

TIMESTAMP = pa.timestamp("us", tz="UTC")
MIN_WEEKDAY_ROWS = 1000  # fewer reference rows of the day's weekday: every day's are used
WARMUP = dt.timedelta(days=30)  # the features' longest window


class TableReader(Protocol):
    def read(self, layer: str, table: str, start, end, **options) -> pa.Table: ...


def scored_on_features(version: str) -> pc.Expression:
    """The prediction log's rows of model `version` that decided (not its shadow scores) and
    were not degraded: scored on defaults while the store was unreachable or empty, they would
    read as drift or as missed frauds (and trigger a retrain), or as the model's own misses."""
    decided = (pc.field("model_version") == str(version)) & (pc.field("path") != "shadow")
    return decided & ~pc.field("degraded")


def logged(lakehouse: TableReader, day: dt.date, version: str) -> pa.Table:
    """The prediction log's rows of `day` scored by model `version` (`scored_on_features`),
    its inputs as columns (none when nothing was logged)."""
    from deltalake.exceptions import TableNotFoundError

    try:
        rows = lakehouse.read(
            "monitoring", "prediction_log", day, day, filter_expression=scored_on_features(version)
        )
    except TableNotFoundError:
        return pa.table({})
    fields = rows.schema.field("features").type
    inputs = rows.column("features").combine_chunks().flatten()
    columns = {field.name: values for field, values in zip(fields, inputs, strict=True)}
    return pa.table(
        {**columns, "score": rows.column("score"), "transaction_id": rows["transaction_id"]}
    )


def reference(lakehouse: TableReader, model, training_set_version: str | None, day: dt.date):
    """The newest window of the champion's training set, its validation and test splits (of
    the table's version it was trained on, while that version is readable), with its scores:
    (inputs and score of `day`'s weekday; ids, days, cards, labels and score of every day;
    what it is).
    Not the train split, nor rows within `WARMUP` of the training set's first: their 30-day
    features are still filling up, which a day of serving never looks like. The same weekday:
    a Saturday's daily counts are not a Tuesday's, and that is no drift."""
    from deltalake.exceptions import DeltaError

    newest = pc.field("split").isin(["validation", "test"])
    version = int(training_set_version) if training_set_version else None
    try:
        read = {"version": version}
        first = lakehouse.read("features", "training_set", *ALL_DAYS, columns=["event_timestamp"],
                               **read)  # fmt: skip
        source = f"features/training_set v{version}, validation and test splits"
    except (DeltaError, OSError) as gone:  # vacuumed or rebuilt: the latest rows stand in
        read = {}
        first = lakehouse.read("features", "training_set", *ALL_DAYS, columns=["event_timestamp"])
        source = f"features/training_set latest (v{version} unreadable: {gone})"
    rows = lakehouse.read("features", "training_set", *ALL_DAYS, filter_expression=newest, **read)
    warm = pc.greater_equal(
        rows["event_timestamp"], pc.min(first["event_timestamp"]).as_py() + WARMUP
    )
    if pc.any(warm).as_py():
        rows = rows.filter(warm)
    else:  # a history shorter than the warm-up: every held-out row
        source += ", warm-up included"
    inputs = rows.select(input_columns(model))
    scores = pa.array(scores_of(model, inputs.to_pandas()), pa.float64())
    labelled = rows.select(["transaction_id", "day", "card_id", "label"])
    labelled = labelled.append_column("score", scores)
    inputs = inputs.append_column("score", scores)
    # ISO weekday, Monday 1, as pyarrow's day_of_week counts from Monday 0.
    same_weekday = pc.equal(pc.day_of_week(rows["event_timestamp"]), day.isoweekday() - 1)
    if (pc.sum(same_weekday).as_py() or 0) >= MIN_WEEKDAY_ROWS:
        return inputs.filter(same_weekday), labelled, f"{source}, {day:%A}s"
    return inputs, labelled, f"{source}, every day (too few {day:%A}s)"


def missed_fraud_counts(
    lakehouse: TableReader, day: dt.date, version: str, reference: pa.Table, policy: DriftPolicy
) -> MissedFrauds:
    """The champion's reported fraud cards of the label window (reports known by the day's end)
    and those it missed, with the same counts in its `reference` window (a table of
    `transaction_id`, `day`, `card_id`, `label` and `score`); first-party disputes left out of
    both."""
    from deltalake.exceptions import TableNotFoundError

    first_party = pa.array(policy.first_party_reason_codes, pa.string())

    def counted(table: pa.Table, frauds: pa.Array) -> tuple[int, int]:
        cards, scores = (table[c].to_numpy(zero_copy_only=False) for c in ("card_id", "score"))
        labels = frauds.to_numpy(zero_copy_only=False).astype(int)
        return missed_frauds(cards, labels, scores, policy.review_threshold)

    def third_party(table: pa.Table, frauds: pa.Array) -> pa.Array:
        return pc.and_(frauds, pc.invert(pc.is_in(table["reason_code"], first_party)))

    first = day - dt.timedelta(days=policy.label_window_days - 1)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    try:
        scored = lakehouse.read(
            "monitoring", "prediction_log", first, day,
            filter_expression=scored_on_features(version),
            columns=["transaction_id", "score"],
        )  # fmt: skip
        labels = lakehouse.read(
            "gold", "transaction_labels", first, day,
            columns=["transaction_id", "card_id", "reported_at", "reason_code"],
        )  # fmt: skip
        reference_days = pc.min_max(reference["day"])
        reasons = lakehouse.read(
            "gold", "transaction_labels", reference_days["min"].as_py() or day,
            reference_days["max"].as_py() or day, columns=["transaction_id", "reason_code"],
            filter_expression=pc.field("reason_code").isin(first_party),
        )  # fmt: skip
    except TableNotFoundError:
        frauds = pc.equal(reference["label"], 1)
        return MissedFrauds(0, 0, *counted(reference, frauds))
    reference = reference.join(reasons, "transaction_id")
    reference_counts = counted(reference, third_party(reference, pc.equal(reference["label"], 1)))
    best = scored.group_by("transaction_id").aggregate([("score", "max")])
    joined = best.join(labels, "transaction_id").rename_columns({"score_max": "score"})
    reported = pc.fill_null(pc.less(joined["reported_at"], pa.scalar(end, TIMESTAMP)), False)
    found_cards, found_missed = counted(joined, third_party(joined, reported))
    return MissedFrauds(found_cards, found_missed, *reference_counts)


def labelled_scores(scored: pa.Table, matured: pa.Table) -> pa.Table:
    """`transaction_id`, `score` and `label` of the logged transactions with a matured label; a
    transaction scored on several paths counts with its highest score."""
    best = scored.select(["transaction_id", "score"]).group_by("transaction_id")
    return (
        best.aggregate([("score", "max")])
        .join(matured.select(["transaction_id", "label"]), "transaction_id")
        .rename_columns({"score_max": "score"})
    )
