"""Velocity features of a card or customer: its transactions in the last 10 minutes and hour, and
the hour's amount, counted up to and including each transaction. One definition for the batch
history that training reads and for the stream worker that feeds the online store."""

import datetime as dt
from collections import deque
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd

TEN_MINUTES, HOUR = dt.timedelta(minutes=10), dt.timedelta(hours=1)
FEATURES = ("txn_count_10m", "txn_count_1h", "amount_sum_1h")
# The entities with velocity features, and their join keys.
VELOCITY_ENTITIES = {"card": "card_id", "customer": "customer_id"}


def velocity_schema(key: str) -> pa.Schema:
    """The Delta schema of a velocity history: what the push source carries, plus `day`."""
    return pa.schema(
        [
            (key, pa.string()),
            ("txn_count_10m", pa.int64()),
            ("txn_count_1h", pa.int64()),
            ("amount_sum_1h", pa.float64()),
            ("event_timestamp", pa.timestamp("us", tz="UTC")),
            ("day", pa.date32()),
        ]
    )


def velocity_history(events: "pd.DataFrame", key: str) -> "pd.DataFrame":
    """One row per event (`key`, `event_timestamp`, `amount_usd`): the key's velocity right
    after the event's instant, stamped with its time. Events of a key at one instant all carry
    the state after the last of them, as the online store holds it once the stream has pushed
    them all: a later read finds the same value whichever of those rows it takes."""
    ordered = events[[key, "event_timestamp", "amount_usd"]].reset_index(drop=True)
    ordered = ordered.sort_values([key, "event_timestamp"], kind="stable")
    keys = ordered[key].to_numpy()
    times = ordered["event_timestamp"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    amounts = ordered["amount_usd"].to_numpy(dtype=np.float64)
    counts_10m = np.empty(len(keys), dtype=np.int64)
    counts_1h = np.empty(len(keys), dtype=np.int64)
    sums_1h = np.empty(len(keys), dtype=np.float64)
    ten_minutes, hour = (w // dt.timedelta(microseconds=1) for w in (TEN_MINUTES, HOUR))
    for start, end in _group_bounds(keys):
        # Within one key: rows in [t - window, t] by a search on its sorted times.
        t = times[start:end]
        here = np.searchsorted(t, t, "right") - 1  # the last row of the same instant
        first_10m = np.searchsorted(t, t - ten_minutes, "left")
        first_1h = np.searchsorted(t, t - hour, "left")
        cumulative = np.r_[0.0, np.cumsum(amounts[start:end])]
        counts_10m[start:end] = here - first_10m + 1
        counts_1h[start:end] = here - first_1h + 1
        sums_1h[start:end] = cumulative[here + 1] - cumulative[first_1h]
    import pandas as pd

    out = pd.DataFrame(
        {
            key: ordered[key],
            "txn_count_10m": counts_10m,
            "txn_count_1h": counts_1h,
            "amount_sum_1h": sums_1h,
            "event_timestamp": ordered["event_timestamp"],
        },
        index=ordered.index,
    )
    return out.sort_index()


def _group_bounds(sorted_keys: np.ndarray):
    """(start, end) of each run of equal keys."""
    if len(sorted_keys) == 0:
        return []
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    return zip(starts, np.r_[starts[1:], len(sorted_keys)], strict=True)


class VelocityCounter:
    """The same features, event by event, as the stream worker keeps them: per key, the events
    of the last hour. Events of one key must arrive in time order. A transaction already
    counted (a message delivered again) changes nothing; keys without an event in the hour
    before the newest event seen leave the state (`evict_idle`)."""

    def __init__(self):
        self._recent: dict[str, deque[tuple[dt.datetime, float, str | None]]] = {}
        self.newest: dt.datetime | None = None
        self._swept: dt.datetime | None = None

    def add(
        self, key: str, at: dt.datetime, amount_usd: float, transaction_id: str | None = None
    ) -> dict[str, float | int] | None:
        """The key's features right after this event; None if `transaction_id` was counted."""
        recent = self._recent.setdefault(key, deque())
        if transaction_id is not None and any(t == transaction_id for _, _, t in recent):
            return None
        recent.append((at, amount_usd, transaction_id))
        while recent[0][0] < at - HOUR:
            recent.popleft()
        self.newest = at if self.newest is None else max(self.newest, at)
        return {
            "txn_count_10m": sum(1 for t, _, _ in recent if t >= at - TEN_MINUTES),
            "txn_count_1h": len(recent),
            "amount_sum_1h": sum(a for _, a, _ in recent),
        }

    def __len__(self) -> int:
        return len(self._recent)

    def evict_idle(self) -> int:
        """Drop the keys whose last event is over an hour before the newest seen (a sweep at
        most every ten minutes of event time: it reads every key); how many."""
        if self.newest is None or (self._swept and self.newest - self._swept < TEN_MINUTES):
            return 0
        self._swept = self.newest
        idle = [k for k, recent in self._recent.items() if recent[-1][0] < self.newest - HOUR]
        for key in idle:
            del self._recent[key]
        return len(idle)
