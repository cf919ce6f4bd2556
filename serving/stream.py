"""The stream worker: transactions from a Redis Stream (consumer group) -> velocity features
pushed to Feast -> scores -> the prediction log -> acknowledged.

    python -m serving.stream [--batch 500] [--block-ms 1000] [--max-idle-s 60] [--flush-s 1]
                             [--until-idle]

STREAM_URL (default redis://127.0.0.1:6379/0), STREAM_NAME (fraud:transactions), STREAM_GROUP
(scorers). A message holds one field `transaction`: the JSON of `serving.transaction.Transaction`.
Scoring does not wait for the log: rows are committed in the background every `--flush-s`, and a
message is acknowledged only once its row is committed. A message delivered again (its worker
was killed between the commit and the acknowledgement) is logged only if its transaction is not
in the log yet. A message that cannot be parsed goes to `<STREAM_NAME>:dead` with the error, and
the worker goes on."""

import argparse
import datetime as dt
import json
import logging
import signal
import sys
from typing import TYPE_CHECKING

import pyarrow as pa

from serving import heap
from settings.stream import StreamSettings

if TYPE_CHECKING:
    from serving.transaction import Transaction

log = logging.getLogger("serving.stream")


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


def not_yet_logged(uri: str, rows: pa.Table) -> pa.Table:
    """The stream log rows whose transaction the log does not hold yet (on the stream path)."""
    import pyarrow.compute as pc

    from lakehouse.delta import read_days, table_exists

    if not rows.num_rows or not table_exists(uri):
        return rows
    days = pc.min_max(rows["day"])
    logged = read_days(
        uri, days["min"].as_py(), days["max"].as_py(), columns=["transaction_id"],
        filter_expression=(pc.field("path") == "stream")
        & pc.field("transaction_id").isin(rows["transaction_id"]),
    )  # fmt: skip
    return rows.filter(pc.invert(pc.is_in(rows["transaction_id"], logged["transaction_id"])))


class StreamWorker:
    """Reads, scores and logs batches of stream messages; a message is acknowledged once its
    log row is committed (the log writer commits in the background, every `flush_s`)."""

    def __init__(self, settings: StreamSettings, scorer, velocity_push, log_writer, redis_client):
        from features.velocity import VelocityCounter

        self.settings, self.scorer, self.log = settings, scorer, log_writer
        self.velocity_push, self.redis = velocity_push, redis_client
        # Velocity per card and customer, event by event (the same definition as the batch
        # history). Kept in memory: a restarted worker counts from its restart on.
        self.counters = {"card": VelocityCounter(), "customer": VelocityCounter()}
        self.stopping = False
        self._recovering = True  # first, what this consumer was given and never acknowledged
        try:
            self.redis.xgroup_create(settings.name, settings.group, id="0", mkstream=True)
        except Exception as exists:  # BUSYGROUP: the group is there already
            if "BUSYGROUP" not in str(exists):
                raise

    def _read(self, count: int, block_ms: int, max_idle_ms: int) -> tuple[list, bool]:
        """(messages, whether they were delivered before: their rows may be logged already)."""
        s = self.settings
        if self._recovering:  # this consumer's unacknowledged messages (it was killed)
            pending = self.redis.xreadgroup(s.group, s.consumer, {s.name: "0"}, count=count)
            messages = pending[0][1] if pending else []
            if messages:
                return _present(messages), True
            self._recovering = False
        # What another consumer left unacknowledged too long (it died), then new messages.
        claimed = self.redis.xautoclaim(s.name, s.group, s.consumer, max_idle_ms, count=count)
        if claimed[1]:
            return _present(claimed[1]), True
        fresh = self.redis.xreadgroup(s.group, s.consumer, {s.name: ">"}, count=count,
                                      block=block_ms)  # fmt: skip
        return _present(fresh[0][1] if fresh else []), False

    def process(self, messages: list, redelivered: bool = False) -> int:
        """Score a batch and hand its log rows to the writer; returns how many were scored."""
        from serving.prediction_log import prediction_rows

        good, dead = [], []
        for message_id, fields in messages:
            try:
                good.append((message_id, parse(fields)))
            except ValueError as error:
                dead.append((message_id, fields, str(error)))
        s = self.settings
        if dead:  # dead-lettered and acknowledged together
            pipe = self.redis.pipeline(transaction=True)
            for message_id, fields, error in dead:
                pipe.xadd(s.dead_letter, {
                    "message_id": message_id, "error": error[:2000],
                    "fields": json.dumps({_text(k): _text(v) for k, v in fields.items()}),
                })  # fmt: skip
            pipe.xack(s.name, s.group, *(m for m, _, _ in dead))
            pipe.execute()
        if not good:
            return 0
        rows = [t.scoring_row() for _, t in good]
        scored = self.scorer.score(rows)  # velocity as it stood before these transactions
        self._push_velocity(rows)
        logged = prediction_rows(scored, self.scorer.inputs, "stream", dt.datetime.now(dt.UTC))
        if redelivered:  # a worker killed between its commit and its acknowledgement
            logged = not_yet_logged(self.log.uri, logged)
        ids = [m for m, _ in good]
        self.log.add(logged, on_written=lambda: self.redis.xack(s.name, s.group, *ids))
        return len(good)

    def _push_velocity(self, rows: list[dict]) -> None:
        ordered = sorted(rows, key=lambda r: r["event_timestamp"])
        for entity, counter in self.counters.items():
            key = f"{entity}_id"
            newest = {}  # the online store keeps one value per entity: the newest
            for r in ordered:
                at = r["event_timestamp"]
                counts = counter.add(r[key], at, r["amount_usd"])
                newest[r[key]] = {key: r[key], "event_timestamp": at, **counts}
            self.velocity_push.push(f"{entity}_velocity_push", list(newest.values()))

    def close(self) -> None:
        """Push the velocity sent, commit the scores and acknowledge their messages."""
        self.velocity_push.close()
        self.log.close()

    def run(
        self, batch: int, block_ms: int, max_idle_s: float, until_idle: bool = False
    ) -> dict[str, int]:
        """Consume until stopped (or, `until_idle`, until a read finds nothing), then commit
        and acknowledge what was scored; the counts."""
        counts = {"scored": 0, "dead_lettered": 0}
        self.velocity_push.wait_ready()  # scoring ahead of the pushes would only queue them
        heap.settle()  # the velocity windows hold ~an hour of events as Python objects
        while not self.stopping:
            messages, redelivered = self._read(batch, block_ms, int(max_idle_s * 1000))
            if not messages:
                if until_idle:
                    break
                continue
            scored = self.process(messages, redelivered)
            counts["scored"] += scored
            counts["dead_lettered"] += len(messages) - scored
            log.debug("scored %d, dead-lettered %d", scored, len(messages) - scored)
        self.close()
        log.info("scored %d, dead-lettered %d", counts["scored"], counts["dead_lettered"])
        return counts


def _present(messages: list) -> list:
    """Messages still in the stream (a claimed one may have been trimmed away: no fields)."""
    return [(mid, fields) for mid, fields in messages if fields is not None]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def build_worker(flush_s: float = 1.0) -> StreamWorker:
    """A worker on this environment's stream, champion (registry), feature store and lakehouse;
    its log rows are committed every `flush_s` seconds."""
    import mlflow
    import redis

    from features.lookup import OnlineFeatures
    from features.store import FEATURE_SERVICE, open_serving_store
    from ml.registry import MODEL_NAME, load_by_alias
    from ml.thresholds import thresholds_from_tags
    from serving.prediction_log import PredictionLogWriter
    from serving.scoring import CircuitBreaker, Scorer, decision_thresholds
    from serving.velocity_push import BackgroundPush
    from settings.env import (
        fraud_home,
        lakehouse_root,
        mlflow_tracking_uri,
        prepare_process_environment,
    )

    prepare_process_environment()
    mlflow.set_tracking_uri(mlflow_tracking_uri())
    model, version = load_by_alias("champion")
    # The tags of the very version loaded: the alias may have moved since.
    tags = mlflow.MlflowClient().get_model_version(MODEL_NAME, version).tags
    thresholds = decision_thresholds(thresholds_from_tags(tags))
    store = open_serving_store(fraud_home())
    features = OnlineFeatures.for_service(store, FEATURE_SERVICE)
    # A batch of hundreds of rows: the API's 250 ms lookup budget is not this path's.
    breaker = CircuitBreaker(timeout_ms=5_000)
    scorer = Scorer(model, version, features, thresholds, breaker)
    settings = StreamSettings.from_environment()
    return StreamWorker(
        settings,
        scorer,
        BackgroundPush(feast_push, VELOCITY_KEYS),
        PredictionLogWriter(f"{lakehouse_root()}/monitoring/prediction_log", flush_s=flush_s),
        redis.Redis.from_url(settings.url),
    )


VELOCITY_KEYS = {"card_velocity_push": "card_id", "customer_velocity_push": "customer_id"}


def feast_push():
    """Push to this environment's feature store (what the velocity child process runs)."""
    from feast.data_source import PushMode

    from features.store import open_serving_store
    from settings.env import fraud_home, prepare_process_environment

    prepare_process_environment()
    store = open_serving_store(fraud_home())
    return lambda source, frame: store.push(source, frame, to=PushMode.ONLINE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.stream", description=__doc__)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--block-ms", type=int, default=1000)
    parser.add_argument("--max-idle-s", type=float, default=60.0)
    parser.add_argument("--flush-s", type=float, default=1.0, help="seconds between log commits")
    parser.add_argument("--until-idle", action="store_true", help="stop once the stream is drained")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    worker = build_worker(args.flush_s)

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
