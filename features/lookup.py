"""Online lookup of a Feast feature service for many entity rows at once. An entity the store does
not know, or whose value is older than its view's TTL, gets the view's defaults and a flag."""

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Union

import numpy as np

from features.report_decay import bring_to
from features.stores import open_reader
from features.views import ViewSpec, service_views, view_spec

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

# Entity rows: dicts holding every join key, or a DataFrame or a mapping of column arrays with a
# column per join key.
Rows = Union[Sequence[Mapping[str, str | None]], Mapping[str, np.ndarray], "pd.DataFrame"]


class OnlineFeatures:
    """The features of one Feast feature service, read from the online store for entity rows.

    `lookup` returns one list per column `<view>__<feature>` plus one boolean `<view>__missing`
    per view: True where the view had no value for the row's entity within its TTL, in which case
    the columns hold the defaults declared on the features (Field tag `default`); decayed report
    counts come brought to the lookup's instant (`features.report_decay`). It never raises
    for an unknown entity. Redis (one pipelined round trip for all rows) and SQLite (one query per
    view) are read in Feast's own storage layout; other stores through Feast's `online_read`."""

    def __init__(self, store: "FeatureStore", views: list[ViewSpec], remember: bool = False):
        self.views = views
        self.join_keys = sorted({k for v in views for k in v.join_keys})
        self.key_sets = sorted({v.join_keys for v in views})
        self.columns = [c for v in views for c in v.columns]
        self.flags = [v.flag for v in views]
        self._reader = open_reader(store, views, remember)

    @classmethod
    def for_service(
        cls, store: "FeatureStore", service: str, remember: bool = False
    ) -> "OnlineFeatures":
        """Exactly the features a feature service names. `remember`: each entity is read from
        the store once, and answered from memory after (a batch run scores against one state of
        the store; a server must see new values, and does not remember)."""
        return cls(store, service_views(store, service), remember)

    @classmethod
    def for_views(cls, store: "FeatureStore", names: Sequence[str]) -> "OnlineFeatures":
        """Every feature of the named feature views."""
        views = [store.get_feature_view(name) for name in names]
        return cls(store, [view_spec(v, [f.name for f in v.features]) for v in views])

    def lookup(self, rows: Rows, as_of: dt.datetime | None = None) -> dict[str, np.ndarray]:
        """Feature values for `rows` (dicts holding every join key, or a DataFrame or column
        arrays with a column per join key; a null value meaning no such entity, e.g. no device),
        valid at `as_of` (now). Each distinct entity is read and decoded once, whatever its
        number of rows."""
        entities = _Entities(rows, self.key_sets)
        now = (as_of or dt.datetime.now(dt.UTC)).timestamp()
        out: dict[str, np.ndarray] = {}
        for view, (stamps, values) in zip(
            self.views, self._reader.read(entities.uniques), strict=True
        ):
            codes = entities.codes[view.join_keys]
            stamps = np.array([np.nan if s is None else s for s in stamps], dtype=np.float64)
            # A value older than the TTL is as unknown as an absent one (Feast does not check).
            stale = np.isnan(stamps) | (view.ttl_s > 0) & (now - stamps > view.ttl_s)
            missing = np.append(stale, True)[codes]  # code -1 (a null key): the appended True
            for j, (column, default) in enumerate(zip(view.columns, view.defaults, strict=True)):
                per_entity = _typed([v[j] for v in values] + [None], default)
                out[column] = np.where(missing, _typed([default], default), per_entity[codes])
            out[view.flag] = missing
        bring_to(out, now)
        return out

    def holds_any(self) -> bool:
        """Whether the online store holds any entity of these views at all: a store that
        answers but holds nothing (restarted without its data) makes every customer unknown."""
        return self._reader.holds_any()

    def unknown(self, n: int) -> dict[str, np.ndarray]:
        """What `lookup` returns for `n` rows when no entity is known: every default, every flag
        set (a caller that cannot reach the store scores with these, and says so)."""
        out: dict[str, np.ndarray] = {}
        for view in self.views:
            for column, default in zip(view.columns, view.defaults, strict=True):
                out[column] = np.repeat(_typed([default], default), n)
            out[view.flag] = np.ones(n, dtype=bool)
        return out

    def event_times(self, rows: Rows) -> dict[str, list[float | None]]:
        """Per view, the event time (epoch seconds) of each row's online value; None if absent."""
        return self._per_row(rows, lambda view, stamps, values: stamps)

    def stored(self, rows: Rows) -> dict[str, list[tuple[float, dict] | None]]:
        """Per view, each row's online value as it was written: (event time in epoch seconds,
        {feature: value}), whatever its age; None if absent."""
        return self._per_row(rows, lambda view, stamps, values: [
            None if stamp is None else (stamp, dict(zip(view.features, value, strict=True)))
            for stamp, value in zip(stamps, values, strict=True)
        ])  # fmt: skip

    def _per_row(self, rows: Rows, per_entity_of) -> dict[str, list]:
        """Per view, `per_entity_of(view, stamps, values)` of each row's entity (None where a
        join key is null): each distinct entity read once."""
        entities = _Entities(rows, self.key_sets)
        out = {}
        read = self._reader.read(entities.uniques)
        for view, (stamps, values) in zip(self.views, read, strict=True):
            per_entity = [*per_entity_of(view, stamps, values), None]
            out[view.name] = [per_entity[c] for c in entities.codes[view.join_keys]]
        return out


def _typed(values: list, default) -> np.ndarray:
    """Values of one feature as an array typed like its default (int64 or float64), nulls
    replaced by the default; object when the feature declares no default."""
    if default is None:
        return np.array(values, dtype=object)
    filled = [default if v is None else v for v in values]
    return np.array(filled, dtype=np.int64 if isinstance(default, int) else np.float64)


class _Entities:
    """The entities of a batch of rows per set of join keys: the distinct ones (a value, or a
    tuple of values for several join keys) and, per row, the index of its entity (-1 where a
    join key is null: no such entity)."""

    def __init__(self, rows: Rows, key_sets: list[tuple[str, ...]]):
        import pandas as pd

        names = sorted({k for keys in key_sets for k in keys})
        factorized = {k: pd.factorize(_key_column(rows, k)) for k in names}
        self.codes: dict[tuple[str, ...], np.ndarray] = {}
        self.uniques: dict[tuple[str, ...], list] = {}
        for keys in key_sets:
            if len(keys) == 1:
                codes, uniques = factorized[keys[0]]
                self.codes[keys], self.uniques[keys] = codes, uniques.tolist()
                continue
            # Several keys: one number per combination of the keys' codes, factorized again.
            combined = np.zeros(len(factorized[keys[0]][0]), dtype=np.int64)
            null = np.zeros(len(combined), dtype=bool)
            for key in keys:
                codes, uniques = factorized[key]
                combined = combined * len(uniques) + codes
                null |= codes < 0
            codes = np.full(len(combined), -1, dtype=np.int64)
            codes[~null], distinct = pd.factorize(combined[~null])
            per_key = []
            for key in reversed(keys):
                uniques = factorized[key][1]
                per_key.append(uniques.take(distinct % len(uniques)).tolist())
                distinct = distinct // len(uniques)
            self.codes[keys], self.uniques[keys] = codes, list(zip(*reversed(per_key), strict=True))


def _key_column(rows: Rows, key: str) -> np.ndarray:
    """The values of join key `key` in `rows`, as objects (None: null)."""
    if hasattr(rows, "columns") or isinstance(rows, Mapping):  # a DataFrame, or column arrays
        if key not in rows:
            raise ValueError(f"entity rows lack join key {key!r}")
        return np.asarray(rows[key], dtype=object)
    absent = [i for i, row in enumerate(rows) if key not in row]
    if absent:
        raise ValueError(f"entity row(s) {absent[:5]} lack join key {key!r}")
    return np.array([row[key] for row in rows] + [None], dtype=object)[:-1]
