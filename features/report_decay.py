"""Fraud reports at a merchant, exponentially decayed: per time constant tau, the sum over the
merchant's known reports of exp(-(t - reported_at) / tau), and the days since its last report.
The value is stored as of the merchant's last report (the sums then, and that report's time);
every reader brings it to its own instant t by multiplying by exp(-(t - last) / tau). So it is
exact whenever it is read, the day's own reports count at once, and the state is two numbers
and a time per merchant. One definition for the offline history, the report stream and both
readers (the online lookup and the training set's join)."""

import datetime as dt
import math
from collections.abc import MutableMapping

import numpy as np
import pyarrow as pa

VIEW = "merchant_fraud_reports"
KEY = "merchant_id"
TAU_S = {"fraud_reports_decayed_1d": 86_400.0, "fraud_reports_decayed_7d": 7 * 86_400.0}
# Stored: the last report's time (epoch seconds); read: the days since it, at most MAX_DAYS.
SINCE = "days_since_report"
FEATURES = (*TAU_S, SINCE)
# Reports older than this leave the sums (a report's weight there is below 2e-4) and a
# merchant without a report for as long is as unknown as one never reported: the view's TTL.
HORIZON = dt.timedelta(days=60)
MAX_DAYS = HORIZON / dt.timedelta(days=1)


def report_schema() -> pa.Schema:
    """The Delta schema of the history: what the push source carries, plus `day`."""
    return pa.schema(
        [
            (KEY, pa.string()),
            *((name, pa.float64()) for name in FEATURES),
            ("event_timestamp", pa.timestamp("us", tz="UTC")),
            ("day", pa.date32()),
        ]
    )


def report_history(reports: pa.Table) -> pa.Table:
    """One row per report (`merchant_id`, `reported_at`): the merchant's state right after it,
    stamped with the report's time and day. Reports of a merchant at one instant all carry the
    state after the last of them, as the online store holds it once all are pushed."""
    order = [(KEY, "ascending"), ("reported_at", "ascending")]
    table = reports.select([KEY, "reported_at"]).sort_by(order)
    keys = table[KEY].to_numpy(zero_copy_only=False)
    stamps = table["reported_at"].cast(pa.timestamp("us", tz="UTC"))
    seconds = stamps.cast(pa.int64()).to_numpy() / 1e6
    sums = {name: np.empty(len(keys)) for name in TAU_S}
    state = DecayedReports()
    for i, (key, at) in enumerate(zip(keys, seconds, strict=True)):
        after = state.add(key, at)
        for name in TAU_S:
            sums[name][i] = after[name]
    # Rows of one merchant and instant: every row takes the last one's sums.
    last_of_instant = _last_of_runs(keys, seconds)
    columns = {KEY: table[KEY]}
    columns |= {name: pa.array(values[last_of_instant]) for name, values in sums.items()}
    columns |= {SINCE: pa.array(seconds), "event_timestamp": stamps}
    columns["day"] = stamps.cast(pa.date32())
    return pa.table(columns, schema=report_schema())


def _last_of_runs(keys: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """For each row, the index of the last row with the same key and instant (rows sorted)."""
    n = len(keys)
    if not n:
        return np.empty(0, dtype=np.int64)
    ends = np.r_[(keys[1:] != keys[:-1]) | (seconds[1:] != seconds[:-1]), True]
    end_index = np.flatnonzero(ends)
    return end_index[np.searchsorted(end_index, np.arange(n))]


# A report no newer than the merchant's last counts as if it came just after it: a stored
# value must be newer than the one it replaces (Feast's Redis store keeps the newer of two).
LATE_STEP_S = 1e-6


class DecayedReports:
    """The sums, report by report, as the stream keeps them: per merchant, the sums as of its
    last report and that report's time (epoch seconds). A report no newer than the last counts
    a microsecond after it. `state` may be a shared mapping (the stream's, from Redis)."""

    def __init__(self, state: MutableMapping[str, tuple[float, dict[str, float]]] | None = None):
        self.state = {} if state is None else state

    def add(self, key: str, at: float) -> dict[str, float]:
        """The merchant's stored row right after a report at `at` (epoch seconds)."""
        known = self.state.get(key)
        last, sums = known if known else (at, dict.fromkeys(TAU_S, 0.0))
        if known and at <= last:
            at = last + LATE_STEP_S
        gap = at - last
        if gap > HORIZON.total_seconds():
            sums = dict.fromkeys(TAU_S, 0.0)
        sums = {name: sums[name] * math.exp(-gap / tau) + 1.0 for name, tau in TAU_S.items()}
        self.state[key] = (at, sums)
        return {**sums, SINCE: at}


def bring_to(columns: MutableMapping[str, np.ndarray], at_s: "np.ndarray | float") -> None:
    """Stored values of the view (`<view>__<feature>` columns, with its `__missing` flag), as
    known at `at_s` (epoch seconds, one per row or one for all): the sums decayed since the last
    report, `days_since_report` the days since it. Rows without a value keep the defaults."""
    since = f"{VIEW}__{SINCE}"
    if since not in columns:
        return
    known = ~np.asarray(columns[f"{VIEW}__missing"], dtype=bool)
    last = np.asarray(columns[since], dtype=np.float64)
    elapsed = np.where(known, np.maximum(np.asarray(at_s, dtype=np.float64) - last, 0.0), 0.0)
    for name, tau in TAU_S.items():
        column = f"{VIEW}__{name}"
        columns[column] = np.where(known, columns[column] * np.exp(-elapsed / tau), columns[column])
    columns[since] = np.where(known, np.minimum(elapsed / 86_400.0, MAX_DAYS), MAX_DAYS)
