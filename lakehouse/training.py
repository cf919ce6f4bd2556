"""Training-set rules: which labels a training set takes at a cut-off (matured ones, or all known
so far with a correction for reports still to come), and the split that holds cards out."""

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SPLITS = ("train", "validation", "test")
MIN_DELAYS = 30  # matured reports needed to estimate the report delay
_US = pa.timestamp("us", tz="UTC")


def label_cutoff(days: pa.ChunkedArray) -> dt.datetime:
    """The time labels are read at by default: the end of the newest day the labels cover."""
    newest = pc.max(days).as_py()
    return dt.datetime.combine(newest + dt.timedelta(days=1), dt.time(), dt.UTC)


def mature_labels(labels: pa.Table, cutoff: dt.datetime, maturity_days: int) -> pa.Table:
    """Rows whose label is final at `cutoff`: the transaction's chargeback window
    (`maturity_days`) has closed. `label` is 1 for a chargeback reported by the cut-off.

    A fraud reported early from a window still open is left out too: taking it would give the
    newest days only positives, and a test split a fraud rate it never has."""
    cutoff_scalar = pa.scalar(cutoff, pa.timestamp("us", tz="UTC"))
    window_closed = pc.less_equal(
        labels.column("event_timestamp"),
        pa.scalar(cutoff - dt.timedelta(days=maturity_days), pa.timestamp("us", tz="UTC")),
    )
    matured = labels.filter(window_closed)
    label = pc.fill_null(pc.less_equal(matured.column("reported_at"), cutoff_scalar), False)
    weight = pa.array(np.ones(matured.num_rows), pa.float64())
    return matured.append_column("label", pc.cast(label, pa.int8())).append_column("weight", weight)


@dataclass(frozen=True)
class ReportDelay:
    """How long chargebacks take, estimated from transactions whose window has closed: the
    delays (seconds) of the reports that arrived within it, sorted."""

    delays_s: np.ndarray
    maturity_days: int

    def reported_share(self, age_s: np.ndarray) -> np.ndarray:
        """The share of a fraud's eventual reports that have arrived by each age (seconds)."""
        reached = np.searchsorted(self.delays_s, age_s, side="right") / len(self.delays_s)
        return np.where(age_s >= self.maturity_days * 86_400, 1.0, reached)

    def age_reaching(self, share: float) -> dt.timedelta:
        """The youngest age by which `share` of the reports have arrived."""
        index = min(len(self.delays_s) - 1, max(0, int(np.ceil(share * len(self.delays_s))) - 1))
        return dt.timedelta(seconds=float(self.delays_s[index]))


def estimate_report_delay(labels: pa.Table, cutoff: dt.datetime, maturity_days: int) -> ReportDelay:
    """The report-delay distribution of the transactions whose `maturity_days` window had
    closed by `cutoff` (their reports within the window are all in). Needs `MIN_DELAYS`."""
    window = dt.timedelta(days=maturity_days)
    closed = labels.filter(
        pc.less_equal(labels["event_timestamp"], pa.scalar(cutoff - window, _US))
    )
    reported = closed.filter(pc.is_valid(closed["reported_at"]))
    delays = pc.subtract(
        pc.cast(reported["reported_at"], _US), pc.cast(reported["event_timestamp"], _US)
    )
    seconds = pc.cast(delays, pa.int64()).to_numpy(zero_copy_only=False) / 1e6
    seconds = np.sort(seconds[(seconds >= 0) & (seconds <= window.total_seconds())])
    if len(seconds) < MIN_DELAYS:
        raise ValueError(
            f"{len(seconds)} chargebacks of transactions older than {maturity_days} days by "
            f"{cutoff.isoformat()}: at least {MIN_DELAYS} are needed to estimate how long reports "
            "take (simulate more days, or train on matured labels only)"
        )
    return ReportDelay(seconds, maturity_days)


def labels_known_so_far(
    labels: pa.Table, cutoff: dt.datetime, delay: ReportDelay, min_reported_share: float
) -> pa.Table:
    """Every transaction up to `cutoff` old enough that `min_reported_share` of frauds are
    reported by its age, labelled by the chargebacks reported by the cut-off, with a `weight`:
    a report that came early stands for the reports of its age still to come (inverse
    probability weighting: 1 / the share reported by that age), everything else weighs 1. So
    the newest days count with their true fraud rate, and a retrain after a drift learns the
    drifted regime before its labels mature."""
    youngest = cutoff - delay.age_reaching(min_reported_share)
    known = labels.filter(pc.less_equal(labels["event_timestamp"], pa.scalar(youngest, _US)))
    age = pc.subtract(pa.scalar(cutoff, _US), pc.cast(known["event_timestamp"], _US))
    age_s = pc.cast(age, pa.int64()).to_numpy(zero_copy_only=False) / 1e6
    reported = pc.less_equal(known["reported_at"], pa.scalar(cutoff, _US))
    label = pc.fill_null(reported, False).to_numpy(zero_copy_only=False)
    weight = np.where(label, 1.0 / np.maximum(delay.reported_share(age_s), min_reported_share), 1.0)
    return known.append_column("label", pa.array(label.astype(np.int8))).append_column(
        "weight", pa.array(weight, pa.float64())
    )


def training_labels(
    labels: pa.Table,
    cutoff: dt.datetime,
    policy: str,
    maturity_days: int,
    min_reported_share: float,
) -> tuple[pa.Table, dict]:
    """The labelled rows a training set takes at `cutoff` by `policy` (`known_so_far`: every
    row old enough, weighted for reports still to come; `matured`: closed windows only), and
    what was decided, for the record."""
    if policy == "matured":
        return mature_labels(labels, cutoff, maturity_days), {"label_policy": policy}
    if policy != "known_so_far":
        raise ValueError(f"label policy {policy!r}: use 'known_so_far' or 'matured'")
    delay = estimate_report_delay(labels, cutoff, maturity_days)
    known = labels_known_so_far(labels, cutoff, delay, min_reported_share)
    label = known["label"].to_numpy(zero_copy_only=False) == 1
    weight = known["weight"].to_numpy(zero_copy_only=False)
    day = 86_400
    return known, {
        "label_policy": policy,
        "report_delay_median_days": round(float(np.median(delay.delays_s)) / day, 1),
        "reported_within_7_days": round(float(delay.reported_share(np.array([7 * day]))[0]), 3),
        "reported_within_21_days": round(float(delay.reported_share(np.array([21 * day]))[0]), 3),
        "delays_estimated_from": len(delay.delays_s),
        "youngest_row_age_days": round(
            delay.age_reaching(min_reported_share).total_seconds() / day, 1
        ),
        "frauds_reported": int(label.sum()),
        "frauds_weighted": round(float(weight[label].sum()), 1),
        "frauds_in_open_windows": int((label & (weight > 1)).sum()),
        "largest_weight": round(float(weight.max()), 2) if len(weight) else 0.0,
    }


def card_buckets(card_ids) -> np.ndarray:
    """Each card's place in [0, 1), the same for a card in every training set and process."""
    import pandas as pd

    hashed = pd.util.hash_array(np.asarray(card_ids, dtype=object))
    return hashed / np.float64(2**64)


def holdout_split(
    event_times: pa.ChunkedArray,
    card_ids,
    validation_share: float,
    test_share: float,
    holdout_days: float,
) -> pa.Array:
    """train / validation / test: the cards of a stable `test_share` (then `validation_share`)
    of all cards are held out over the newest `holdout_days`, where their rows are the test
    (validation) split; every other row trains, the newest days of the other cards included.
    So a retrain learns the newest regime, and every model, champion or challenger, is judged
    on recent rows of cards it never trained on there."""
    if not 0 <= validation_share < 1 or not 0 <= test_share < 1:
        raise ValueError("validation_share and test_share must lie in [0, 1)")
    if validation_share + test_share >= 1:
        raise ValueError("validation_share + test_share must leave cards to train on")
    if holdout_days <= 0:
        raise ValueError("holdout_days must be positive")
    in_us = pc.cast(event_times, pa.timestamp("us", event_times.type.tz))
    times = pc.cast(in_us, pa.int64()).to_numpy(zero_copy_only=False)
    if len(times) == 0:
        return pa.array([], pa.string())
    window = times >= times.max() - round(holdout_days * 86_400e6)
    bucket = card_buckets(card_ids)
    split = np.where(bucket < test_share, 2, np.where(bucket < test_share + validation_share, 1, 0))
    return pa.array(np.array(SPLITS)[np.where(window, split, 0)])
