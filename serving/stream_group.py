"""A consumer in a Redis Stream's consumer group, as the stream and report workers read theirs:
the group created if absent; this consumer's own unacknowledged messages first (it was killed),
then those another consumer left idle too long (it died), then new ones; and the dead letters."""

import json

from settings.stream import StreamSettings


class GroupReader:
    """Reads `settings`' stream as its consumer in its group (created here when absent)."""

    def __init__(self, redis_client, settings: StreamSettings):
        self.redis, self.settings = redis_client, settings
        self._recovering = True  # first, what this consumer was given and never acknowledged
        try:
            self.redis.xgroup_create(settings.name, settings.group, id="0", mkstream=True)
        except Exception as exists:  # BUSYGROUP: the group is there already
            if "BUSYGROUP" not in str(exists):
                raise

    def read(self, count: int, block_ms: int, max_idle_ms: int) -> tuple[list, bool]:
        """(messages, whether they were delivered before: their effects may be there already)."""
        s = self.settings
        if self._recovering:  # this consumer's unacknowledged messages (it was killed)
            pending = self.redis.xreadgroup(s.group, s.consumer, {s.name: "0"}, count=count)
            messages = pending[0][1] if pending else []
            if messages:
                return present(messages), True
            self._recovering = False
        # What another consumer left unacknowledged too long (it died), then new messages.
        claimed = self.redis.xautoclaim(s.name, s.group, s.consumer, max_idle_ms, count=count)
        if claimed[1]:
            return present(claimed[1]), True
        fresh = self.redis.xreadgroup(s.group, s.consumer, {s.name: ">"}, count=count,
                                      block=block_ms)  # fmt: skip
        return present(fresh[0][1] if fresh else []), False


def message_model(fields: dict, field: str, model):
    """The pydantic `model` in a message's JSON `field`; ValueError (with the reason) when the
    message has none."""
    from pydantic import ValidationError

    raw = fields.get(field.encode()) or fields.get(field)
    if raw is None:
        raise ValueError(f"message has no `{field}` field")
    try:
        return model.model_validate_json(raw)
    except ValidationError as invalid:
        raise ValueError(str(invalid)) from None


def dead_letter(pipe, settings: StreamSettings, message_id, fields: dict, error: str) -> None:
    """Queue on `pipe` the message's copy to the dead-letter stream, with its error."""
    pipe.xadd(settings.dead_letter, {
        "message_id": message_id, "error": error[:2000],
        "fields": json.dumps({text(k): text(v) for k, v in fields.items()}),
    })  # fmt: skip


def present(messages: list) -> list:
    """Messages still in the stream (a claimed one may have been trimmed away: no fields)."""
    return [(mid, fields) for mid, fields in messages if fields is not None]


def text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
