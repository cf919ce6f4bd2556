"""Feast's serialized entity keys, as its online stores key their rows, memoized per entity."""

from collections.abc import Callable, Sequence

CACHE_LIMIT = 200_000  # decoded values and serialized keys kept per reader


class EntityKeys:
    """Feast's serialized entity keys of one set of join keys (plus `suffix`), memoized per
    entity (a value, or a tuple of values for several join keys)."""

    def __init__(self, join_keys: tuple[str, ...], version: int, suffix: bytes = b""):
        from feast.infra.key_encoding_utils import serialize_entity_key

        self._suffix = suffix
        if version >= 3:
            self._serialize = string_key_serializer(join_keys)
        else:
            self._serialize = lambda entity: serialize_entity_key(
                entity_key(join_keys, entity), version
            )
        self._cache: dict = {}

    def of(self, entities: Sequence) -> list[bytes]:
        known = self._cache.get
        return [key if (key := known(e)) is not None else self._remember(e) for e in entities]

    def _remember(self, value) -> bytes:
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        key = self._cache[value] = self._serialize(value) + self._suffix
        return key


def string_key_serializer(join_keys: tuple[str, ...]) -> Callable[[object], bytes]:
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


def entity_key(join_keys: tuple[str, ...], entity):
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    values = entity if len(join_keys) > 1 else (entity,)
    return EntityKey(join_keys=list(join_keys), entity_values=[Value(string_val=v) for v in values])
