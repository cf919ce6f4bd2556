"""Model inputs from training-set or scoring rows: which columns, and the fitted encodings that
ship inside the model (numeric statistics from the train split only, categorical vocabularies
with an unknown bucket)."""

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# A frame of rows: a DataFrame, or a mapping of column name to a NumPy array (one per column).
Frame = pd.DataFrame | Mapping[str, np.ndarray]

UNKNOWN = 0  # index of the unknown bucket of every categorical column

# Columns of a transaction known when it is scored, besides the feature service's features.
TRANSACTION_NUMERIC = ["amount_usd"]
TRANSACTION_CATEGORICAL = ["merchant_category", "merchant_country", "channel"]
# The amount against the customer's own habits, computed where the model runs: "ten times the
# usual" is the signal, and a ratio is what a network learns slowest from separate inputs.
RATIOS = {
    "amount_to_customer_avg_30d": ("amount_usd", "customer_daily__amount_avg_30d"),
    "amount_to_customer_max_30d": ("amount_usd", "customer_daily__amount_max_30d"),
}

# Inputs whose thresholds carry the signal (a limit on amounts, "five times the usual"), which a
# log scale smooths away: each also enters piecewise-linearly over quantile bins of the train
# split (Gorishniy et al., "On Embeddings for Numerical Features in Tabular Deep Learning", 2022).
PIECEWISE = ("amount_usd", *RATIOS)
PIECEWISE_BINS = 16


# The optional source field each input is built on. A field the data lacks (null in every
# training row) leaves the model with its inputs: a count that is always 0 or a category that
# is always unknown says nothing, and nothing is filled in for the model to learn from.
INPUTS_OF_FIELD = {
    "device_id": ("customer_device__", "customer_daily__distinct_devices_30d"),
    "merchant_country": (
        "customer_country__", "customer_daily__distinct_countries_30d", "merchant_country",
    ),
    "merchant_category": ("merchant_category",),
    "channel": ("channel",),
}  # fmt: skip


def absent_fields(rows) -> list[str]:
    """Optional fields with no value in any of `rows` (a DataFrame, or an Arrow table)."""
    columns = getattr(rows, "column_names", rows)
    return [f for f in INPUTS_OF_FIELD if f in columns and _without_value(rows[f])]


def _without_value(column) -> bool:
    if hasattr(column, "null_count"):  # Arrow
        return column.null_count == len(column)
    return bool(column.isna().all())


def unavailable(columns, absent: list[str]) -> list[str]:
    """The inputs among `columns` built on an absent field."""
    prefixes = tuple(p for f in absent for p in INPUTS_OF_FIELD[f])
    return [c for c in columns if c.startswith(prefixes)] if prefixes else []


def with_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` plus each ratio whose inputs it holds (a zero or missing denominator: NaN)."""
    ratios = {name: _ratio(frame, name) for name in RATIOS if _has_ratio(frame, name)}
    return frame.assign(**ratios) if ratios else frame


def _has_ratio(frame: Frame, name: str) -> bool:
    top, bottom = RATIOS[name]
    return top in frame and bottom in frame


def _ratio(frame: Frame, name: str) -> np.ndarray:
    """Ratio `name` of each row: NaN where its denominator is zero or missing."""
    top, bottom = RATIOS[name]
    below = _floats(frame[bottom])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(below > 0, _floats(frame[top]) / below, np.nan)


def numeric_columns(frame_columns) -> list[str]:
    """The transaction's amount, every feature `<view>__<feature>` and `<view>__missing` flag of
    a training set or lookup, and the ratios they allow, in a stable order."""
    features = sorted(c for c in frame_columns if "__" in c)
    ratios = [name for name, inputs in RATIOS.items() if set(inputs) <= set(frame_columns)]
    return [*TRANSACTION_NUMERIC, *features, *ratios]


@dataclass
class Preprocessor:
    """Fitted encodings. Numeric: signed log1p, then NaN -> the train median, then standardized
    with the train mean and std; the `PIECEWISE` inputs also as one value in [0, 1] per bin
    between `bin_edges` (0 where missing), standardized alike. Categorical: train vocabulary,
    index 0 for anything unseen."""

    numeric: list[str]
    categorical: list[str] = field(default_factory=lambda: list(TRANSACTION_CATEGORICAL))
    medians: list[float] = field(default_factory=list)
    means: list[float] = field(default_factory=list)
    stds: list[float] = field(default_factory=list)
    vocabularies: dict[str, list[str]] = field(default_factory=dict)
    absent_fields: list[str] = field(default_factory=list)  # and their inputs left out
    bin_edges: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def fit(cls, train: pd.DataFrame, numeric: list[str] | None = None) -> "Preprocessor":
        numeric = numeric or numeric_columns(train.columns)
        missing = [
            c for c in [*numeric, *TRANSACTION_CATEGORICAL] if c not in train.columns
            and not (c in RATIOS and _has_ratio(train, c))
        ]  # fmt: skip
        if missing:
            raise ValueError(f"training rows lack column(s) {missing}")
        absent = absent_fields(train)
        left_out = set(unavailable([*numeric, *TRANSACTION_CATEGORICAL], absent))
        numeric = [c for c in numeric if c not in left_out]
        categorical = [c for c in TRANSACTION_CATEGORICAL if c not in left_out]
        raw = _numeric_matrix(train, numeric)
        bin_edges = {
            name: _quantile_edges(raw[:, numeric.index(name)])
            for name in PIECEWISE
            if name in numeric
        }
        values = _encoded(raw, numeric, bin_edges).astype(np.float64)  # exact stats
        medians = np.nan_to_num(np.nanmedian(values, axis=0), nan=0.0)
        filled = np.where(np.isnan(values), medians, values)
        stds = filled.std(axis=0)
        return cls(
            numeric=list(numeric),
            medians=medians.tolist(),
            means=filled.mean(axis=0).tolist(),
            stds=np.where(stds > 1e-12, stds, 1.0).tolist(),
            categorical=categorical,
            vocabularies={c: sorted(train[c].dropna().astype(str).unique()) for c in categorical},
            absent_fields=absent,
            bin_edges=bin_edges,
        )

    @property
    def input_columns(self) -> list[str]:
        """The columns a scoring row brings (the ratios are computed from them)."""
        return [*(c for c in self.numeric if c not in RATIOS), *self.categorical]

    @property
    def width(self) -> int:
        """Numeric values per row that the network takes."""
        return len(self.numeric) + sum(len(e) - 1 for e in self.bin_edges.values())

    @property
    def cardinalities(self) -> list[int]:
        """Embedding rows per categorical column, the unknown bucket included."""
        return [len(self.vocabularies[c]) + 1 for c in self.categorical]

    def transform(self, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
        """(numeric float32 [n, len(numeric)], categorical int64 [n, len(categorical)]). Missing
        numeric columns or values count as missing; unseen categories go to the unknown bucket.
        `frame`: a DataFrame, or a mapping of column name to array (the online path's small
        batches, where pandas' per-column overhead costs more than the work)."""
        scaled = _encoded(_numeric_matrix(frame, self.numeric), self.numeric, self.bin_edges)
        unknown = np.isnan(scaled)
        means, stds = np.float32(self.means), np.float32(self.stds)
        scaled -= means
        scaled /= stds
        # A missing value is the train median, scaled like any other value.
        median = (np.float32(self.medians) - means) / stds
        np.copyto(scaled, np.broadcast_to(median, scaled.shape), where=unknown)
        codes = np.full((row_count(frame), len(self.categorical)), UNKNOWN, dtype=np.int64)
        for i, column in enumerate(self.categorical):
            if column in frame:
                raw = frame[column]
                if raw.dtype != object:
                    raw = pd.Series(raw).astype(str).where(pd.notna(raw))
                # -1 (absent from the vocabulary, or null) + 1: the unknown bucket
                codes[:, i] = self._vocabulary_index(column).get_indexer(raw) + 1
        return scaled, codes

    def _vocabulary_index(self, column: str) -> pd.Index:
        cached = self.__dict__.setdefault("_indexes", {})
        if column not in cached:
            cached[column] = pd.Index(self.vocabularies[column], dtype=object)
        return cached[column]

    def to_dict(self) -> dict:
        return {
            "numeric": self.numeric,
            "categorical": self.categorical,
            "medians": self.medians,
            "means": self.means,
            "stds": self.stds,
            "vocabularies": self.vocabularies,
            "absent_fields": self.absent_fields,
            "bin_edges": self.bin_edges,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessor":
        return cls(**data)


def row_count(frame: Frame) -> int:
    """Rows of a DataFrame, or of a mapping of column arrays (the length of any column)."""
    if isinstance(frame, pd.DataFrame):
        return len(frame)
    return len(next(iter(frame.values()))) if frame else 0


def _numeric_matrix(frame: Frame, columns: list[str]) -> np.ndarray:
    """float32 [n, len(columns)] of `frame`'s columns and ratios (the network's type from the
    start: half the memory to touch of float64 and one copy less); NaN where a column is absent
    or a ratio's denominator is zero or missing, inf beyond float32's range."""
    shape = (row_count(frame), len(columns))
    values = np.full(shape, np.nan, dtype=np.float32, order="F")  # column by column
    with np.errstate(over="ignore"):
        for j, name in enumerate(columns):
            if name in RATIOS:
                if _has_ratio(frame, name):
                    values[:, j] = _ratio(frame, name)
            elif name in frame:
                values[:, j] = _floats(frame[name])
    return values


def _quantile_edges(values: np.ndarray) -> list[float]:
    """Edges of up to `PIECEWISE_BINS` bins holding equal shares of the known values."""
    known = values[np.isfinite(values)]
    if not len(known):
        return []
    return np.unique(np.quantile(known, np.linspace(0, 1, PIECEWISE_BINS + 1))).tolist()


def _encoded(values: np.ndarray, columns: list[str], bin_edges: dict[str, list[float]]):
    """The signed log of `values`, then each binned column's piecewise-linear values: per bin,
    where the raw value lies between its edges, 0 below, 1 above (0 where missing)."""
    pieces = []
    for name, edges in bin_edges.items():
        raw = values[:, columns.index(name)]
        lower, upper = np.float32(edges[:-1]), np.float32(edges[1:])
        with np.errstate(invalid="ignore"):
            share = (raw[:, None] - lower) / (upper - lower)
        pieces.append(np.nan_to_num(np.clip(share, 0, 1), nan=0.0, posinf=1.0, neginf=0.0))
    logged = _signed_log(values)
    return np.hstack([logged, *pieces], dtype=np.float32) if pieces else logged


def _floats(column) -> np.ndarray:
    if isinstance(column, np.ndarray) and column.dtype != object:
        return column.astype(np.float64, copy=False)
    return pd.Series(column, copy=False).to_numpy(dtype=np.float64, na_value=np.nan)


def _signed_log(values: np.ndarray) -> np.ndarray:
    """sign(x) * log1p(|x|), in place: amounts and counts span orders of magnitude. Infinite ->
    missing. In place because a batch's matrix is tens of MB: each temporary is a fresh mapping
    from the OS, and its page faults cost more than the arithmetic."""
    values[np.isinf(values)] = np.nan
    negative = np.signbit(values)
    np.abs(values, out=values)
    np.log1p(values, out=values)
    np.negative(values, out=values, where=negative)
    return values
