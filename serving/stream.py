"""The stream worker: transactions from a Redis Stream (consumer group) -> velocity features
pushed to Feast -> scores -> the prediction log -> acknowledged.

    python -m serving.stream [--batch 500] [--block-ms 1000] [--max-idle-s 60] [--until-idle]

STREAM_URL (default redis://127.0.0.1:6379/0), STREAM_NAME (fraud:transactions), STREAM_GROUP
(scorers). A message holds one field `transaction`: the JSON of `serving.transaction.Transaction`.
A message is acknowledged only once its score is committed to the prediction log; the log is
merged by (transaction id, path), so a message delivered twice (a worker killed after its write,
before its ack) is logged once. A message that cannot be parsed goes to `<STREAM_NAME>:dead` with
the error, and the worker goes on."""

import argparse
import datetime as dt
import json
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from serving.transaction import Transaction

log = logging.getLogger("serving.stream")
DEFAULT_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class StreamSettings:
    url: str
    name: str
    group: str
    consumer: str

    @property
    def dead_letter(self) -> str:
        return f"{self.name}:dead"

    @classmethod
    def from_environment(cls) -> "StreamSettings":
        return cls(
            url=os.environ.get("STREAM_URL", DEFAULT_URL),
            name=os.environ.get("STREAM_NAME", "fraud:transactions"),
            group=os.environ.get("STREAM_GROUP", "scorers"),
            consumer=os.environ.get("STREAM_CONSUMER", f"{socket.gethostname()}-{os.getpid()}"),
        )


def parse(fields: dict) -> "Transaction":
    """The transaction of a stream message; ValueError (with the reason) when it has none."""
    from pydantic import ValidationError

    from serving.transaction import Transaction

    raw = fields.get(b"transaction") or fields.get("transaction")
    if raw is None:
        raise ValueError("message has no `transaction` field")
    try:
        return Transaction.model_validate_json(raw)
    except ValidationError as invalid:
        raise ValueError(str(invalid)) from None


def merge_once(uri: str, rows: pa.Table) -> None:
    """Add the log rows whose (transaction id, path) the log does not hold yet, in one commit."""
    from deltalake import DeltaTable

    from lakehouse.delta import append_rows, table_exists

    if not table_exists(uri):
        append_rows(uri, rows)
        return
    (
        DeltaTable(uri)
        .merge(
            rows,
            predicate="t.transaction_id = s.transaction_id AND t.path = s.path AND t.day = s.day",
            source_alias="s",
            target_alias="t",
        )
        .when_not_matched_insert_all()
        .execute()
    )


class StreamWorker:
    """Reads, scores, logs and acknowledges batches of stream messages."""

    def __init__(self, settings: StreamSettings, scorer, push, log_uri: str, redis_client):
        from ml.velocity import VelocityCounter

        self.settings, self.scorer, self.push, self.log_uri = settings, scorer, push, log_uri
        self.redis = redis_client
        # Velocity per card and customer, event by event (the same definition as the batch
        # history). Kept in memory: a restarted worker counts from its restart on.
        self.velocity = {"card": VelocityCounter(), "customer": VelocityCounter()}
        self.stopping = False
        try:
            self.redis.xgroup_create(settings.name, settings.group, id="0", mkstream=True)
        except Exception as exists:  # BUSYGROUP: the group is there already
            if "BUSYGROUP" not in str(exists):
                raise

    def _read(self, count: int, block_ms: int, max_idle_ms: int) -> list:
        s = self.settings
        # First what this consumer was given and never acknowledged (it crashed), then what
        # another consumer left idle too long, then new messages.
        pending = self.redis.xreadgroup(s.group, s.consumer, {s.name: "0"}, count=count)
        messages = pending[0][1] if pending else []
        if not messages:
            claimed = self.redis.xautoclaim(s.name, s.group, s.consumer, max_idle_ms, count=count)
            messages = claimed[1]
        if not messages:
            fresh = self.redis.xreadgroup(s.group, s.consumer, {s.name: ">"}, count=count,
                                          block=block_ms)  # fmt: skip
            messages = fresh[0][1] if fresh else []
        return [(mid, fields) for mid, fields in messages if fields is not None]

    def process(self, messages: list) -> int:
        """Score and log a batch; returns how many messages were scored."""
        from serving.prediction_log import prediction_rows

        good, dead = [], []
        for message_id, fields in messages:
            try:
                good.append((message_id, parse(fields)))
            except ValueError as error:
                dead.append((message_id, fields, str(error)))
        for message_id, fields, error in dead:
            self.redis.xadd(self.settings.dead_letter, {
                "message_id": message_id, "error": error[:2000],
                "fields": json.dumps({_text(k): _text(v) for k, v in fields.items()}),
            })  # fmt: skip
        if good:
            rows = [t.scoring_row() for _, t in good]
            scored = self.scorer.score(rows)  # velocity as it stood before these transactions
            self._push_velocity(rows)
            now = dt.datetime.now(dt.UTC)
            merge_once(self.log_uri, prediction_rows(scored, self.scorer.inputs, "stream", now))
        done = [m for m, _ in good] + [m for m, _, _ in dead]
        if done:
            self.redis.xack(self.settings.name, self.settings.group, *done)
        return len(good)

    def _push_velocity(self, rows: list[dict]) -> None:
        import pandas as pd

        for entity, counter in self.velocity.items():
            key = f"{entity}_id"
            pushed = [
                {key: r[key], "event_timestamp": r["event_timestamp"],
                 **counter.add(r[key], r["event_timestamp"], r["amount_usd"])}
                for r in sorted(rows, key=lambda r: r["event_timestamp"])
            ]  # fmt: skip
            self.push(f"{entity}_velocity_push", pd.DataFrame(pushed))

    def run(
        self, batch: int, block_ms: int, max_idle_s: float, until_idle: bool = False
    ) -> dict[str, int]:
        """Consume until stopped (or, `until_idle`, until a read finds nothing); the counts."""
        counts = {"scored": 0, "dead_lettered": 0}
        while not self.stopping:
            messages = self._read(batch, block_ms, int(max_idle_s * 1000))
            if not messages:
                if until_idle:
                    break
                continue
            scored = self.process(messages)
            counts["scored"] += scored
            counts["dead_lettered"] += len(messages) - scored
            log.info("scored %d, dead-lettered %d", scored, len(messages) - scored)
        return counts


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def build_worker() -> StreamWorker:
    """A worker on this environment's stream, champion (registry), feature store and lakehouse."""
    import mlflow
    import redis
    from feast.data_source import PushMode

    from ml.feature_store import FEATURE_SERVICE, open_feature_store, settings_from_environment
    from ml.online_features import OnlineFeatures
    from ml.registry import load_by_alias
    from resources.settings import (
        fraud_home,
        lakehouse_root,
        mlflow_tracking_uri,
        prepare_process_environment,
    )
    from serving.scoring import CircuitBreaker, Scorer

    prepare_process_environment()
    mlflow.set_tracking_uri(mlflow_tracking_uri())
    model, version = load_by_alias("champion")
    store = open_feature_store(**settings_from_environment(fraud_home()))
    features = OnlineFeatures.for_service(store, FEATURE_SERVICE)
    # A batch of hundreds of rows: the API's 250 ms lookup budget is not this path's.
    scorer = Scorer(model, version, features, breaker=CircuitBreaker(timeout_ms=5_000))
    settings = StreamSettings.from_environment()
    return StreamWorker(
        settings,
        scorer,
        lambda source, frame: store.push(source, frame, to=PushMode.ONLINE),
        f"{lakehouse_root()}/monitoring/prediction_log",
        redis.Redis.from_url(settings.url),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.stream", description=__doc__)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--block-ms", type=int, default=1000)
    parser.add_argument("--max-idle-s", type=float, default=60.0)
    parser.add_argument("--until-idle", action="store_true", help="stop once the stream is drained")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    worker = build_worker()

    def stop(*_):
        worker.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    s = worker.settings
    log.info("consuming %s as %s/%s with model v%s", s.name, s.group, s.consumer,
             worker.scorer.model_version)  # fmt: skip
    counts = worker.run(args.batch, args.block_ms, args.max_idle_s, args.until_idle)
    log.info("stopped: %s", counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
