"""Online lookup of a Feast feature service for many entity rows at once. An entity the store does
not know, or whose value is older than its view's TTL, gets the view's defaults and a flag."""

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Union

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore, FeatureView

# Entity rows: dicts holding every join key, or a DataFrame or a mapping of column arrays with a
# column per join key.
Rows = Union[Sequence[Mapping[str, str | None]], Mapping[str, np.ndarray], "pd.DataFrame"]

_CACHE_LIMIT = 200_000  # decoded values and serialized keys kept per reader
_SQLITE_PARAMETERS = 10_000  # entity keys per query, below SQLite's limit on parameters
_MISSING = object()


@dataclass(frozen=True)
class ViewSpec:
    """What a lookup needs of one feature view of the service."""

    name: str
    join_keys: tuple[str, ...]  # sorted
    features: tuple[str, ...]
    defaults: tuple[float, ...]
    ttl_s: float  # 0: values never expire

    # Cached: a lookup reads them for every view of every call.
    @cached_property
    def columns(self) -> list[str]:
        return [f"{self.name}__{f}" for f in self.features]

    @cached_property
    def flag(self) -> str:
        return f"{self.name}__missing"


def _view_spec(view: "FeatureView", features: list[str]) -> ViewSpec:
    fields = {f.name: f for f in view.features}
    return ViewSpec(
        name=view.name,
        join_keys=tuple(sorted(view.join_keys)),
        features=tuple(features),
        defaults=tuple(_default(fields[f]) for f in features),
        ttl_s=view.ttl.total_seconds() if view.ttl else 0.0,
    )


def _default(field) -> float | int | None:
    """The `default` tag of a feature, typed like the feature; None when it declares none."""
    from feast.types import Int32, Int64

    raw = field.tags.get("default")
    if raw is None:
        return None
    return int(float(raw)) if field.dtype in (Int32, Int64) else float(raw)


def service_views(store: "FeatureStore", service: str) -> list[ViewSpec]:
    """The views of a feature service, each with the features the service takes from it."""
    projections = store.get_feature_service(service).feature_view_projections
    return [
        _view_spec(store.get_feature_view(p.name), [f.name for f in p.features])
        for p in projections
    ]


def fill_missing(frame: "pd.DataFrame", views: list[ViewSpec]) -> "pd.DataFrame":
    """Offline rows (columns `<view>__<feature>`, null where no value was known within the TTL)
    made to look as `OnlineFeatures.lookup` returns them: the defaults and the flags."""
    out = frame.copy()
    for view in views:
        out[view.flag] = out[view.columns].isna().all(axis=1)
        for column, default in zip(view.columns, view.defaults, strict=True):
            out[column] = out[column].fillna(default)
            if isinstance(default, int):
                out[column] = out[column].astype("int64")
    return out


class OnlineFeatures:
    """The features of one Feast feature service, read from the online store for entity rows.

    `lookup` returns one list per column `<view>__<feature>` plus one boolean `<view>__missing`
    per view: True where the view had no value for the row's entity within its TTL, in which case
    the columns hold the defaults declared on the features (Field tag `default`). It never raises
    for an unknown entity. Redis (one pipelined round trip for all rows) and SQLite (one query per
    view) are read in Feast's own storage layout; other stores through Feast's `online_read`."""

    def __init__(self, store: "FeatureStore", views: list[ViewSpec], remember: bool = False):
        self.views = views
        self.join_keys = sorted({k for v in views for k in v.join_keys})
        self.key_sets = sorted({v.join_keys for v in views})
        self.columns = [c for v in views for c in v.columns]
        self.flags = [v.flag for v in views]
        online = store.config.online_store
        if online.type == "redis" and online.redis_type != "redis_cluster":
            self._reader = _RedisReader(store, views)
        elif online.type == "sqlite":
            self._reader = _SqliteReader(store, views)
        else:  # Redis Cluster spreads keys over nodes: Feast's own client routes them
            self._reader = _FeastReader(store, views)
        if remember:
            self._reader = _Remembering(self._reader, views)

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
        return cls(store, [_view_spec(v, [f.name for f in v.features]) for v in views])

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
        return out

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
        entities = _Entities(rows, self.key_sets)
        out = {}
        for view, (stamps, _) in zip(self.views, self._reader.read(entities.uniques), strict=True):
            per_entity = [*stamps, None]
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


class _Decoder:
    """Feast's serialized values and timestamps to Python numbers, memoized: feature values
    repeat (counts, rounded amounts), and parsing a protobuf costs more than a dict lookup."""

    def __init__(self):
        from feast.protos.feast.types.Value_pb2 import Value
        from google.protobuf.timestamp_pb2 import Timestamp

        self._value, self._timestamp = Value, Timestamp
        self._values: dict[bytes | None, float | int | None] = {None: None}
        self._stamps: dict[bytes, float] = {}

    def values_of(self, raws: Sequence[bytes | None]) -> list:
        try:  # all seen before, the common case: one C-level pass
            return list(map(self._values.__getitem__, raws))
        except KeyError:
            known, decode, missing = self._values.get, self._decode, _MISSING
            return [v if (v := known(raw, missing)) is not missing else decode(raw) for raw in raws]

    def _decode(self, raw: bytes):
        proto = self._value.FromString(raw)
        kind = proto.WhichOneof("val")
        decoded = getattr(proto, kind) if kind and kind != "null_val" else None
        if len(self._values) >= _CACHE_LIMIT:
            self._values.clear()
            self._values[None] = None
        self._values[raw] = decoded
        return decoded

    def stamp(self, raw: bytes | None) -> float | None:
        if not raw:
            return None
        try:
            return self._stamps[raw]
        except KeyError:
            proto = self._timestamp.FromString(raw)
            seconds = proto.seconds + proto.nanos / 1e9
            if len(self._stamps) >= _CACHE_LIMIT:
                self._stamps.clear()
            self._stamps[raw] = seconds
            return seconds


class _Keys:
    """Feast's serialized entity keys of one set of join keys (plus `suffix`), memoized per
    entity (a value, or a tuple of values for several join keys)."""

    def __init__(self, join_keys: tuple[str, ...], version: int, suffix: bytes = b""):
        from feast.infra.key_encoding_utils import serialize_entity_key

        self._suffix = suffix
        if version >= 3:
            self._serialize = _string_key_serializer(join_keys)
        else:
            self._serialize = lambda entity: serialize_entity_key(
                _entity_key(join_keys, entity), version
            )
        self._cache: dict = {}

    def of(self, entities: Sequence) -> list[bytes]:
        known = self._cache.get
        return [key if (key := known(e)) is not None else self._remember(e) for e in entities]

    def _remember(self, value) -> bytes:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        key = self._cache[value] = self._serialize(value) + self._suffix
        return key


def _string_key_serializer(join_keys: tuple[str, ...]) -> Callable[[object], bytes]:
    """Feast's `serialize_entity_key` (version 3) of string entity values, without building
    protobufs (16 us a key: a third of a batch run's first lookup). `join_keys` are sorted, as
    Feast sorts them."""
    import struct

    from feast.value_type import ValueType

    string = struct.pack("<I", ValueType.STRING.value)
    head = struct.pack("<I", len(join_keys)) + b"".join(
        string + struct.pack("<I", len(k.encode())) + k.encode() for k in join_keys
    )

    def value(v: str) -> bytes:
        encoded = v.encode()
        return string + struct.pack("<I", len(encoded)) + encoded

    if len(join_keys) == 1:
        return lambda entity: head + value(entity)
    return lambda entity: head + b"".join(map(value, entity))


def _entity_key(join_keys: tuple[str, ...], entity):
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    values = entity if len(join_keys) > 1 else (entity,)
    return EntityKey(join_keys=list(join_keys), entity_values=[Value(string_val=v) for v in values])


def _bulk(value: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


class _Remembering:
    """A reader that reads an entity once and answers it from memory after (up to
    `_CACHE_LIMIT` entities per set of join keys, then it starts afresh)."""

    def __init__(self, reader, views: list[ViewSpec]):
        self._reader, self._views = reader, views
        self._keys = sorted({v.join_keys for v in views})
        # per view: entity -> (event time, values)
        self._known: list[dict] = [{} for _ in views]
        self._first = [[v.join_keys for v in views].index(k) for k in self._keys]

    def read(self, uniques: dict[tuple[str, ...], list]) -> list[tuple[list, list]]:
        new = {}
        for keys, first in zip(self._keys, self._first, strict=True):
            known = self._known[first]  # every view of these keys knows the same entities
            if len(known) + len(uniques[keys]) > _CACHE_LIMIT:
                for view, cache in zip(self._views, self._known, strict=True):
                    if view.join_keys == keys:
                        cache.clear()
            new[keys] = [e for e in uniques[keys] if e not in known]
        if any(new.values()):
            read = self._reader.read(new)
            for view, known, (stamps, values) in zip(self._views, self._known, read, strict=True):
                answered = zip(stamps, values, strict=True)
                known.update(zip(new[view.join_keys], answered, strict=True))
        out = []
        for view, known in zip(self._views, self._known, strict=True):
            answers = list(map(known.__getitem__, uniques[view.join_keys]))
            out.append(([a[0] for a in answers], [a[1] for a in answers]))
        return out


class _RedisReader:
    """Feast's Redis layout read directly: one hash per entity key (serialized key + project),
    one field per feature (murmur3 of `view:feature`) and one timestamp per view (`_ts:view`).

    A lookup is one pipeline of HMGETs, one per distinct entity key, sent as one buffer: the
    commands are packed ahead (only the key changes), which halves the time redis-py's pipeline
    or a Lua script takes for 64 rows."""

    def __init__(self, store: "FeatureStore", views: list[ViewSpec]):
        from feast.infra.online_stores.helpers import _mmh3
        from feast.infra.online_stores.redis import RedisOnlineStore, _versioned_fv_name

        config = store.config
        self._pool = RedisOnlineStore()._get_client(config.online_store).connection_pool
        # Views with the same join keys share one hash per entity.
        self._join_keys = sorted({v.join_keys for v in views})
        version, project = config.entity_key_serialization_version, config.project.encode()
        self._keys = {k: _Keys(k, version, project) for k in self._join_keys}
        self._decoder = _Decoder()
        fields: dict[tuple[str, ...], list[bytes]] = {k: [] for k in self._join_keys}
        self._slices = []  # per view: (join keys, its first field, feature count)
        for view in views:
            name = _versioned_fv_name(store.get_feature_view(view.name), config)
            group = fields[view.join_keys]
            self._slices.append((view.join_keys, len(group), len(view.features)))
            group += [_mmh3(f"{name}:{f}") for f in view.features] + [f"_ts:{name}".encode()]
        # Per set of join keys: the command up to its key, and its fields after the key.
        self._commands = {
            key: (b"*%d\r\n" % (len(names) + 2) + _bulk(b"HMGET"), b"".join(map(_bulk, names)))
            for key, names in fields.items()
        }

    def _hmget(self, packed: bytes, count: int) -> list[list[bytes | None]]:
        connection = self._pool.get_connection()
        try:
            connection.send_packed_command([packed])
            return [connection.read_response() for _ in range(count)]
        except BaseException:
            connection.disconnect()  # replies left unread would answer the next lookup
            raise
        finally:
            self._pool.release(connection)

    def read(self, uniques: dict[tuple[str, ...], list]) -> list[tuple[list, list]]:
        parts, first = [], {}
        for join_keys in self._join_keys:
            head, tail = self._commands[join_keys]
            first[join_keys] = len(parts)
            parts += [
                head + _bulk(key) + tail for key in self._keys[join_keys].of(uniques[join_keys])
            ]
        replies = self._hmget(b"".join(parts), len(parts)) if parts else []
        values, stamp = self._decoder.values_of, self._decoder.stamp
        out = []
        for join_keys, field, count in self._slices:
            start = first[join_keys]
            mine = replies[start : start + len(uniques[join_keys])]
            out.append(
                (
                    [stamp(r[field + count]) for r in mine],
                    [values(r[field : field + count]) for r in mine],
                )
            )
        return out


class _SqliteReader:
    """Feast's SQLite layout read directly: per view a table of (entity key, feature name,
    serialized value, event time in epoch seconds), one query per view."""

    def __init__(self, store: "FeatureStore", views: list[ViewSpec]):
        import sqlite3

        from feast.infra.online_stores.sqlite import _table_id

        config = store.config
        versioned = config.registry.enable_online_feature_view_versioning
        self._views = views
        self._tables = [
            _table_id(config.project, store.get_feature_view(v.name), versioned) for v in views
        ]
        self._connection = sqlite3.connect(config.online_store.path, check_same_thread=False)
        version = config.entity_key_serialization_version
        self._keys = {v.join_keys: _Keys(v.join_keys, version) for v in views}
        self._decoder = _Decoder()

    def read(self, uniques: dict[tuple[str, ...], list]) -> list[tuple[list, list]]:
        values_of = self._decoder.values_of
        out = []
        for view, table in zip(self._views, self._tables, strict=True):
            keys = self._keys[view.join_keys].of(uniques[view.join_keys])
            found: dict[bytes, tuple] = {}  # key: (event time, {feature: value})
            for start in range(0, len(keys), _SQLITE_PARAMETERS):
                part = keys[start : start + _SQLITE_PARAMETERS]
                for key, name, raw, stamp in self._connection.execute(
                    f'SELECT entity_key, feature_name, value, event_ts FROM "{table}" '
                    f"WHERE entity_key IN ({','.join('?' * len(part))})",
                    part,
                ):
                    hit = found.get(key)
                    if hit is None:
                        hit = found[key] = (stamp, {})
                    hit[1][name] = raw
            absent = (None, {})
            hits = [found.get(key, absent) for key in keys]
            out.append(
                (
                    [None if stamp is None else _epoch(stamp) for stamp, _ in hits],
                    [values_of([raws.get(f) for f in view.features]) for _, raws in hits],
                )
            )
        return out


def _epoch(stamp) -> float:
    """Feast's SQLite event time (epoch seconds, or ISO text from older writers) in seconds."""
    if isinstance(stamp, int | float):
        return float(stamp)
    parsed = dt.datetime.fromisoformat(stamp)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


class _FeastReader:
    """Any Feast online store, through its own `online_read`, one call per view."""

    def __init__(self, store: "FeatureStore", views: list[ViewSpec]):
        self._store, self._views = store, views
        self._tables = [store.get_feature_view(v.name) for v in views]
        self._provider = store._get_provider()

    def read(self, uniques: dict[tuple[str, ...], list]) -> list[tuple[list, list]]:
        from feast.type_map import feast_value_type_to_python_type

        out = []
        for view, table in zip(self._views, self._tables, strict=True):
            answers = self._provider.online_read(
                config=self._store.config,
                table=table,
                entity_keys=[_entity_key(view.join_keys, e) for e in uniques[view.join_keys]],
                requested_features=list(view.features),
            )
            stamps, values = [], []
            for stamp, found in answers:
                decoded = [
                    feast_value_type_to_python_type(found[f]) if found and f in found else None
                    for f in view.features
                ]
                values.append(decoded)
                if stamp is None or all(v is None for v in decoded):
                    # Absent: Feast's Redis store answers epoch 0 with empty values.
                    stamps.append(None)
                    continue
                stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
                stamps.append(stamp.timestamp())
            out.append((stamps, values))
        return out
