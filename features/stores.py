"""Readers of Feast's online stores: Redis and SQLite read directly in Feast's own layout, any
other store through Feast's `online_read`. A reader answers, per view, each distinct entity's
event time and raw values."""

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from features.keys import CACHE_LIMIT, EntityKeys, entity_key
from features.views import ViewSpec

if TYPE_CHECKING:
    from feast import FeatureStore

_SQLITE_PARAMETERS = 10_000  # entity keys per query, below SQLite's limit on parameters
_MISSING = object()


def open_reader(store: "FeatureStore", views: list[ViewSpec], remember: bool):
    """The fastest reader of this store's layout; `remember`: one that reads each entity once."""
    online = store.config.online_store
    if online.type == "redis" and online.redis_type != "redis_cluster":
        reader = RedisReader(store, views)
    elif online.type == "sqlite":
        reader = SqliteReader(store, views)
    else:  # Redis Cluster spreads keys over nodes: Feast's own client routes them
        reader = FeastReader(store, views)
    return Remembering(reader, views) if remember else reader


class Decoder:
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
        if len(self._values) >= CACHE_LIMIT:
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
            if len(self._stamps) >= CACHE_LIMIT:
                self._stamps.clear()
            self._stamps[raw] = seconds
            return seconds


def _bulk(value: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


class Remembering:
    """A reader that reads an entity once and answers it from memory after (up to
    `CACHE_LIMIT` entities per set of join keys, then it starts afresh)."""

    def __init__(self, reader, views: list[ViewSpec]):
        self._reader, self._views = reader, views
        self._keys = sorted({v.join_keys for v in views})
        # per view: entity -> (event time, values)
        self._known: list[dict] = [{} for _ in views]
        self._first = [[v.join_keys for v in views].index(k) for k in self._keys]

    def holds_any(self) -> bool:
        return self._reader.holds_any()

    def read(self, uniques: dict[tuple[str, ...], list]) -> list[tuple[list, list]]:
        new = {}
        for keys, first in zip(self._keys, self._first, strict=True):
            known = self._known[first]  # every view of these keys knows the same entities
            if len(known) + len(uniques[keys]) > CACHE_LIMIT:
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


class RedisReader:
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
        self._keys = {k: EntityKeys(k, version, project) for k in self._join_keys}
        self._project = project
        self._decoder = Decoder()
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

    def holds_any(self) -> bool:
        """Whether any entity of this project is stored (every key ends with the project's
        name): a Redis restarted without its data answers lookups, and knows no one."""
        import redis

        client = redis.Redis(connection_pool=self._pool)
        return next(client.scan_iter(match=b"*" + self._project, count=1000), None) is not None

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


class SqliteReader:
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
        self._keys = {v.join_keys: EntityKeys(v.join_keys, version) for v in views}
        self._decoder = Decoder()

    def holds_any(self) -> bool:
        """Whether any view's table holds a row (a missing table holds none)."""
        import sqlite3

        for table in self._tables:
            try:
                if self._connection.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone():
                    return True
            except sqlite3.OperationalError:  # no such table: never materialized
                continue
        return False

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


class FeastReader:
    """Any Feast online store, through its own `online_read`, one call per view."""

    def __init__(self, store: "FeatureStore", views: list[ViewSpec]):
        self._store, self._views = store, views
        self._tables = [store.get_feature_view(v.name) for v in views]
        self._provider = store._get_provider()

    def holds_any(self) -> bool:
        """Unknown through Feast's API (no cheap "any row" probe): taken as holding."""
        return True

    def read(self, uniques: dict[tuple[str, ...], list]) -> list[tuple[list, list]]:
        from feast.type_map import feast_value_type_to_python_type

        out = []
        for view, table in zip(self._views, self._tables, strict=True):
            answers = self._provider.online_read(
                config=self._store.config,
                table=table,
                entity_keys=[entity_key(view.join_keys, e) for e in uniques[view.join_keys]],
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
