"""Training-set rules: which labels have matured by a cut-off, and the temporal split."""

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SPLITS = ("train", "validation", "test")


def label_cutoff(days: pa.ChunkedArray) -> dt.datetime:
    """The time labels are read at by default: the end of the newest day the labels cover."""
    newest = pc.max(days).as_py()
    return dt.datetime.combine(newest + dt.timedelta(days=1), dt.time(), dt.UTC)


def mature_labels(labels: pa.Table, cutoff: dt.datetime, maturity_days: int) -> pa.Table:
    """Rows whose label is final at `cutoff`: the transaction's chargeback window
    (`maturity_days`) has closed. `label` is 1 for a chargeback reported by the cut-off.

    A fraud reported early from a window still open is left out too: taking it would give the
    newest days only positives, and an out-of-time test split a fraud rate it never has."""
    cutoff_scalar = pa.scalar(cutoff, pa.timestamp("us", tz="UTC"))
    window_closed = pc.less_equal(
        labels.column("event_timestamp"),
        pa.scalar(cutoff - dt.timedelta(days=maturity_days), pa.timestamp("us", tz="UTC")),
    )
    matured = labels.filter(window_closed)
    label = pc.fill_null(pc.less_equal(matured.column("reported_at"), cutoff_scalar), False)
    return matured.append_column("label", pc.cast(label, pa.int8()))


def temporal_split(
    event_times: pa.ChunkedArray, validation_share: float, test_share: float
) -> pa.Array:
    """train / validation / test by transaction time (oldest first), never at random. Rows at
    the same instant stay together, so no moment is in two splits."""
    if not 0 <= validation_share < 1 or not 0 <= test_share < 1:
        raise ValueError("validation_share and test_share must lie in [0, 1)")
    if validation_share + test_share >= 1:
        raise ValueError("validation_share + test_share must leave rows to train on")
    times = pc.cast(event_times, pa.int64()).to_numpy(zero_copy_only=False)
    if len(times) == 0:
        return pa.array([], pa.string())
    held_out = validation_share + test_share
    validation_from = np.quantile(times, 1 - held_out, method="higher") if held_out else np.inf
    test_from = np.quantile(times, 1 - test_share, method="higher") if test_share else np.inf
    split = (times >= validation_from).astype(int) + (times >= test_from)
    return pa.array(np.array(SPLITS)[split])


def point_in_time_violations(
    training, features, keys: list[str], prefix: str, columns: list[str], ttl: dt.timedelta
) -> int:
    """Rows of `training` (pandas) whose joined `prefix__<column>` values differ from the
    latest `features` row (pandas, by entity `keys`) known at the row's event time and within
    `ttl`: a value from the future, or a stale or missing one, is a violation."""
    import pandas as pd

    left = training[[*keys, "event_timestamp", *(f"{prefix}__{c}" for c in columns)]]
    left = left.reset_index(drop=True).astype({"event_timestamp": "datetime64[us, UTC]"})
    left = left.sort_values("event_timestamp")
    right = features[[*keys, "feature_timestamp", *columns]]
    right = right.astype({"feature_timestamp": "datetime64[us, UTC]"}).sort_values(
        "feature_timestamp"
    )
    expected = pd.merge_asof(
        left,
        right,
        left_on="event_timestamp",
        right_on="feature_timestamp",
        by=keys,
        direction="backward",
        tolerance=pd.Timedelta(ttl),
    )
    violations = pd.Series(False, index=expected.index)
    for column in columns:
        got = expected[f"{prefix}__{column}"].astype("float64")
        want = expected[column].astype("float64")
        same = (got - want).abs().le(1e-6) | (got.isna() & want.isna())
        violations |= ~same
    return int(violations.sum())
