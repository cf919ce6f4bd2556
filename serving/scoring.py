"""The one scoring code path of online, batch and stream serving: transactions -> online features
-> the champion model -> score, decision and reason codes."""

import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.lookup import OnlineFeatures
from ml.preprocessing import Frame, row_count
from ml.registry import input_columns

log = logging.getLogger(__name__)
DECISIONS = ("approve", "review", "decline")


@dataclass(frozen=True)
class Thresholds:
    """Scores at or above `review` go to an analyst, at or above `decline` are refused."""

    review: float = 0.5
    decline: float = 0.9

    def __post_init__(self):
        if not 0 <= self.review <= self.decline <= 1:
            raise ValueError(f"need 0 <= review <= decline <= 1, got {self.review}, {self.decline}")

    def decide(self, scores: np.ndarray) -> np.ndarray:
        return np.where(
            scores >= self.decline, "decline", np.where(scores >= self.review, "review", "approve")
        )


def decision_thresholds(chosen: tuple[float, float] | None) -> Thresholds:
    """FRAUD_REVIEW_THRESHOLD and FRAUD_DECLINE_THRESHOLD where set (overrides), else the
    model version's thresholds from costs (`registry/decision_thresholds`), else 0.5 and 0.9."""
    review, decline = chosen or (Thresholds.review, Thresholds.decline)
    return Thresholds(
        review=float(os.environ.get("FRAUD_REVIEW_THRESHOLD") or review),
        decline=float(os.environ.get("FRAUD_DECLINE_THRESHOLD") or decline),
    )


# Reason codes by rule, where the model does not explain its scores (`Scorer(explain=False)`:
# batch scoring, models packaged without a network): the facts a reviewer checks first, each true
# of the row and its features (rules read a DataFrame or a mapping of column arrays alike).
REASONS: dict[str, Callable[[Frame], np.ndarray]] = {
    "new_device": lambda f: f["customer_device__missing"] & pd.notna(f["device_id"]),
    "new_country": lambda f: f["customer_country__missing"],
    "amount_above_usual": lambda f: f["amount_usd"] > 3 * f["customer_daily__amount_avg_30d"],
    "card_velocity": lambda f: f["card_velocity__txn_count_10m"] >= 3,
    "unknown_customer": lambda f: f["customer_daily__missing"],
    "merchant_fraud_rate": lambda f: f["merchant_daily__fraud_rate_30d"] > 0.02,
}


def reason_codes(frame: Frame) -> pa.ListArray:
    """Per row, the reason codes that hold (none for a row without the features they read)."""
    fired, codes = [], []
    for code, rule in REASONS.items():
        try:
            fired.append(np.asarray(rule(frame), dtype=bool))
        except KeyError:  # the model's service lacks a feature this rule reads
            continue
        codes.append(code)
    hits = np.column_stack(fired) if fired else np.zeros((row_count(frame), 0), dtype=bool)
    offsets = np.concatenate([[0], np.cumsum(hits.sum(axis=1))]).astype(np.int32)
    names = np.array(codes, dtype=object)[np.nonzero(hits)[1]]  # row by row, in REASONS order
    return pa.ListArray.from_arrays(offsets, pa.array(names, pa.string()))


class CircuitBreaker:
    """Guards the feature store: a lookup that fails or takes longer than `timeout_ms` counts
    as a failure (its caller goes on without it); after `failures` in a row the breaker opens and
    lookups are not attempted; after `cooldown_s` one is let through, and a success closes it."""

    degrades = True  # a caller is waiting: an answer on defaults beats none

    def __init__(self, failures: int = 3, timeout_ms: float = 250.0, cooldown_s: float = 5.0):
        self.failures, self.timeout_ms, self.cooldown_s = failures, timeout_ms, cooldown_s
        self._consecutive, self._opened_at = 0, None
        self._lock = threading.Lock()
        # A lookup stuck on a dead connection finishes (or fails) here, not in the request.
        self._pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="lookup")

    @property
    def open(self) -> bool:
        with self._lock:
            if self._opened_at is None:
                return False
            return time.monotonic() - self._opened_at < self.cooldown_s

    def call(self, fn: Callable[[], dict]) -> dict | None:
        """`fn()`, or None when the breaker is open, the call fails, or it times out."""
        if self.open:
            return None
        try:
            result = self._pool.submit(fn).result(timeout=self.timeout_ms / 1000)
        except Exception:  # any store failure or delay degrades the answer, never the request
            self._record(ok=False)
            return None
        self._record(ok=True)
        return result

    def _record(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self._consecutive, self._opened_at = 0, None
                return
            self._consecutive += 1
            if self._consecutive >= self.failures:
                self._opened_at = time.monotonic()


class Unguarded:
    """No breaker, for a caller no one waits on (a batch run): the lookup runs for as long as it
    takes, and a failure raises with its cause instead of degrading the scores."""

    degrades = False

    def call(self, fn: Callable[[], dict]) -> dict:
        return fn()


# The reason code of a degraded answer, in place of the feature-based ones (which would call
# every customer unknown): the store could not be read, or it answered and holds nothing.
STORE_UNAVAILABLE, STORE_EMPTY = "feature_store_unavailable", "feature_store_empty"


class StoreEmptiness:
    """Whether the online store holds nothing at all, asked at most every `every_s` seconds (a
    restarted Redis answers every lookup, and knows no one). `holds_any` answers through the
    scorer's breaker: None (failed, slow, open) is the breaker's to tell, not emptiness."""

    def __init__(self, holds_any: Callable[[], bool | None], every_s: float = 5.0):
        self._holds_any, self.every_s = holds_any, every_s
        self._checked_at, self._empty = -float("inf"), False
        self._lock = threading.Lock()

    def empty(self) -> bool:
        with self._lock:
            if time.monotonic() - self._checked_at < self.every_s:
                return self._empty
            self._checked_at = time.monotonic()
        self._empty = self._holds_any() is False
        return self._empty


@dataclass
class Scored:
    """Scores of a batch of transactions and what they were computed from."""

    frame: dict[str, np.ndarray]  # the scoring rows' columns and every feature the model read
    scores: np.ndarray
    decisions: np.ndarray  # of str
    reasons: pa.ListArray  # of str
    # Scored on defaults and request features only (the store unreachable or empty); the one
    # reason code then says which.
    degraded: bool
    model_version: str
    lookup_s: float = 0.0  # seconds spent on the online features
    model_s: float = 0.0  # and in the model
    route: str | None = None  # during a canary rollout: `canary` or `stable`
    error: str | None = None  # why the canary did not answer (the stable version did)

    @property
    def degraded_by(self) -> str | None:
        """The reason code of a degraded batch (its one reason), None when not degraded."""
        return self.reasons[0][0].as_py() if self.degraded else None


class Scorer:
    """Features from the online store (through a circuit breaker) plus the model => scores."""

    def __init__(
        self,
        model,
        model_version: str,
        features: OnlineFeatures,
        thresholds: Thresholds | None = None,
        breaker: CircuitBreaker | Unguarded | None = None,
        explain: bool = False,
    ):
        self.model, self.model_version, self.features = model, str(model_version), features
        self.thresholds = thresholds or Thresholds()
        self.breaker = breaker or CircuitBreaker()
        self.emptiness = StoreEmptiness(lambda: self.breaker.call(features.holds_any))
        self.inputs = input_columns(model)
        self._probabilities = _probabilities(model)
        self._explainer = _explainer(model) if explain else None

    def score(self, rows: Sequence[dict] | pa.Table, as_of=None) -> Scored:
        """Score scoring rows (`Transaction.scoring_row()`s, or an Arrow table of silver rows),
        as of `as_of` (now). Both become NumPy columns: on the API's batches of a few rows,
        building DataFrames cost more than the lookup and the model together, and on a batch
        run's chunks about a third of the scoring."""
        table = _arrow_columns(rows) if isinstance(rows, pa.Table) else _columns(rows)
        started = time.perf_counter()
        looked_up = self.breaker.call(lambda: self.features.lookup(table, as_of))
        lookup_s = time.perf_counter() - started
        if looked_up is None:
            degraded_by = STORE_UNAVAILABLE
        else:
            degraded_by = STORE_EMPTY if self.emptiness.empty() else None
        if degraded_by == STORE_EMPTY and not self.breaker.degrades:
            raise LookupError(
                "the online store holds no features at all: materialize features/online_store "
                "before scoring on online features"
            )
        n = row_count(table)
        features = self.features.unknown(n) if looked_up is None else looked_up
        scored = self._decide({**table, **features}, degraded_by)
        scored.lookup_s = lookup_s
        return scored

    def rescore(self, scored: Scored, explain: bool = True) -> Scored:
        """This model's answer on what another one scored: the same features and degradation
        (a shadow's scores, a canary's fallback), without a second lookup. `explain=False`:
        the rules' reason codes, not the attributions (a shadow's reasons answer no one)."""
        return self._decide(scored.frame, scored.degraded_by, explain)

    def _decide(self, frame: dict, degraded_by: str | None, explain: bool = True) -> Scored:
        started = time.perf_counter()
        scores = self._probabilities({name: frame[name] for name in self.inputs})
        model_s = time.perf_counter() - started
        n, decisions = len(scores), self.thresholds.decide(scores)
        if degraded_by:
            reasons = _only(degraded_by, n)
        else:
            reasons = self._reasons(frame, decisions) if explain else reason_codes(frame)
        return Scored(
            frame=frame,
            scores=scores,
            decisions=decisions,
            reasons=reasons,
            degraded=degraded_by is not None,
            model_version=self.model_version,
            model_s=model_s,
        )

    def _reasons(self, frame: dict, decisions: np.ndarray) -> pa.ListArray:
        """The rules' codes, and for each transaction sent to review or declined the model's
        own reasons (attributions) in their place: a person acts on those, and explaining every
        approval would cost each answer about a millisecond (bench/RESULTS.md). The rules
        stand in when an explanation fails: a reason is never worth a failed answer."""
        rules = reason_codes(frame)
        flagged = np.flatnonzero(decisions != "approve")
        if self._explainer is None or not len(flagged):
            return rules
        try:
            explained = self._explainer.top_reasons({k: v[flagged] for k, v in frame.items()})
        except Exception:
            log.exception("attributions failed; the rules' reason codes answer instead")
            return rules
        reasons = rules.to_pylist()
        for row, found in zip(flagged.tolist(), explained, strict=True):
            reasons[row] = found
        return pa.array(reasons, pa.list_(pa.string()))


def attributions_on() -> bool:
    """FRAUD_ATTRIBUTIONS (`on` unless `off`): serving's reason codes from the model's own
    attributions (`ml.attribution`), else from the rules in REASONS."""
    return os.environ.get("FRAUD_ATTRIBUTIONS", "on") != "off"


def _explainer(model):
    """The attributions of a packaged model's network; None for models packaged before
    `get_raw_model` existed (their reasons come from the rules)."""
    from ml.attribution import Explainer

    try:
        return Explainer(model.get_raw_model())
    except NotImplementedError:
        return None


def _only(code: str, n: int) -> pa.ListArray:
    """`code` as every row's one reason."""
    return pa.ListArray.from_arrays(np.arange(n + 1, dtype=np.int32), pa.array([code] * n))


def _columns(rows: Sequence[dict]) -> dict[str, np.ndarray]:
    """Rows as one array per key: numbers as float64 (None: NaN), flags as bool, else objects."""
    columns = {}
    for key in rows[0] if rows else ():
        values = [row[key] for row in rows]
        kinds = {type(v) for v in values if v is not None}
        if kinds and kinds <= {float, int}:
            columns[key] = np.array(values, dtype=np.float64)
        elif kinds == {bool} and None not in values:
            columns[key] = np.array(values, dtype=bool)
        else:
            columns[key] = np.array([*values, None], dtype=object)[:-1]  # never a 2-D array
    return columns


def _arrow_columns(table: pa.Table) -> dict[str, np.ndarray]:
    """An Arrow table as `_columns` makes rows: numbers as float64 (null: NaN), flags as bool,
    times as datetime64 in UTC, anything else as objects (null: None)."""
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            columns[name] = column.cast(pa.float64()).to_numpy()
        elif pa.types.is_boolean(kind) and column.null_count == 0:
            columns[name] = column.to_numpy()
        elif pa.types.is_timestamp(kind):
            columns[name] = column.cast(pa.timestamp(kind.unit)).to_numpy()
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            columns[name] = _strings(column)
        else:
            columns[name] = column.to_numpy(zero_copy_only=False)
    return columns


def _strings(column: pa.ChunkedArray) -> np.ndarray:
    """Strings as objects (null: None). A column of few distinct values (ids of entities,
    categories) makes one Python string per value, shared by its rows: 9 -> 2 ms a column of
    200k rows, and hashing them later (lookups, vocabularies) hashes each value once."""
    head = column.slice(0, 1000)
    if pc.count_distinct(head).as_py() > len(head) // 2:  # mostly distinct (transaction ids)
        return column.to_numpy(zero_copy_only=False)
    encoded = column.combine_chunks().dictionary_encode()
    values = np.array([*encoded.dictionary.to_pylist(), None], dtype=object)
    indices = encoded.indices.fill_null(len(encoded.dictionary))
    return values[indices.to_numpy()]


def _probabilities(model) -> Callable[[Frame], np.ndarray]:
    """The model's scores of a frame of its inputs. The frame is built to the model's signature
    here (typed lookups, validated transactions), so the packaged model's own scoring is called
    directly: MLflow's per-call signature checks cost more than the network on small batches.
    Models packaged before `get_raw_model` existed go through `predict`."""
    try:
        return model.get_raw_model().score
    except NotImplementedError:
        return lambda frame: model.predict(pd.DataFrame(frame))["fraud_probability"].to_numpy()
