"""The stream worker: transactions from a Redis Stream (consumer group) -> velocity features
pushed to Feast -> scores -> the prediction log -> acknowledged.

    python -m serving.stream [--batch 500] [--block-ms 1000] [--max-idle-s 60] [--flush-s 1]
                             [--max-tries 5] [--until-idle] [--metrics-port 9108]

STREAM_URL (default redis://127.0.0.1:6379/0), STREAM_NAME (fraud:transactions), STREAM_GROUP
(scorers). A message holds one field `transaction`: the JSON of `serving.transaction.Transaction`.
Scoring does not wait for the log: rows are committed in the background every `--flush-s`, and a
message is acknowledged only once its row is committed. Workers commit one at a time (a Redis
lock): a worker leaves out the rows of messages another claimed from it meanwhile, and a message
delivered again (its worker was killed, or slow past `--max-idle-s`) is logged only if its
transaction is not in the log yet; so a transaction is logged once. It counts once in the
velocity features too (which know the transactions they counted). A message that cannot be
parsed goes to `<STREAM_NAME>:dead` with the error; one that parses but fails to score is left
pending, claimed again after `--max-idle-s`, and dead-lettered once it has been delivered
`--max-tries` times; the worker goes on.

A starting worker rebuilds its velocity windows from the stream's last hour; the stream is
trimmed to that hour, never past a message not yet acknowledged; keys idle for an hour leave
the windows."""

import argparse
import datetime as dt
import logging
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

import pyarrow as pa

from serving import heap
from serving.stream_group import GroupReader, dead_letter, message_model, text
from settings.stream import StreamSettings

if TYPE_CHECKING:
    from serving.transaction import Transaction

log = logging.getLogger("serving.stream")
HOUR_MS = 3_600_000
TRIM_EVERY_S = 10.0
COMMIT_LOCK_S = 60  # longer than any commit: a lock outliving its holder frees itself then


def parse(fields: dict) -> "Transaction":
    """The transaction of a stream message; ValueError (with the reason) when it has none."""
    from serving.transaction import Transaction

    return message_model(fields, "transaction", Transaction)


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

    def __init__(
        self,
        settings: StreamSettings,
        scorer,
        velocity_push,
        log_writer,
        redis_client,
        max_tries: int = 5,
        models=None,
        metrics=None,
        shadow=None,
    ):
        from features.velocity import VelocityCounter
        from serving.metrics import ServingMetrics
        from serving.model_follow import Lineup

        self.settings, self.log = settings, log_writer
        self.lineup = Lineup(scorer)
        self.models = models  # a ModelFollower: its current lineup scores the next batch
        self.metrics = metrics or ServingMetrics.off()
        self.shadow = shadow  # a ShadowScoring with a log writer of its own
        self.velocity_push, self.redis, self.max_tries = velocity_push, redis_client, max_tries
        self._group = GroupReader(redis_client, settings)
        # Velocity per card and customer, event by event (the same definition as the batch
        # history), rebuilt at start from the stream's last hour.
        self.counters = {"card": VelocityCounter(), "customer": VelocityCounter()}
        self.stopping = False
        self._trimmed_at = 0.0
        # Read and scored, not yet committed: transaction id -> (message id, delivered before);
        # and those of its messages another worker claimed meanwhile (not this one's to ack).
        self._awaiting: dict[str, tuple] = {}
        self._claimed_away: set = set()
        self.log.guard = self._commit_once
        self.rebuilt = self._rebuild_velocity()

    @property
    def scorer(self):
        """The champion's scorer in service."""
        return self.lineup.champion

    def _rebuild_velocity(self, chunk: int = 10_000) -> int:
        """Count the transactions of the stream's last hour into the velocity windows (without
        pushing: the online store holds what was pushed); how many."""
        start, counted = f"{_now_ms() - HOUR_MS}-0", 0
        while True:
            entries = self.redis.xrange(self.settings.name, min=start, count=chunk)
            for _, fields in entries:
                try:
                    transaction = parse(fields)
                except ValueError:
                    continue
                row = transaction.scoring_row()
                for entity, counter in self.counters.items():
                    counter.add(row[f"{entity}_id"], row["event_timestamp"], row["amount_usd"],
                                row["transaction_id"])  # fmt: skip
                counted += 1
            if len(entries) < chunk:
                return counted
            start = "(" + text(entries[-1][0])

    def _read(self, count: int, block_ms: int, max_idle_ms: int) -> tuple[list, bool]:
        """(messages, whether they were delivered before: their rows may be logged already)."""
        return self._group.read(count, block_ms, max_idle_ms)

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
                dead_letter(pipe, s, message_id, fields, error)
            pipe.xack(s.name, s.group, *(m for m, _, _ in dead))
            pipe.execute()
            self.metrics.dead_letters.inc(len(dead))
        good, scored = self._score(good)  # velocity as it stood before these transactions
        if not good:
            return 0
        rows = [t.scoring_row() for _, t in good]
        self.metrics.observe_lineup(self.lineup.roles)
        self.metrics.observe_scored(scored, "stream", self.scorer.breaker.open)
        oldest = min(row["event_timestamp"] for row in rows)
        self.metrics.stream_lag.observe((dt.datetime.now(dt.UTC) - oldest).total_seconds())
        self._push_velocity(rows)
        inputs = self.lineup.scorer_of(scored).inputs
        logged = prediction_rows(scored, inputs, "stream", dt.datetime.now(dt.UTC))
        for message_id, transaction in good:
            self._awaiting[transaction.transaction_id] = (message_id, redelivered)

        def committed():  # acknowledged: what this worker logged, or found logged
            mine = [m for m, _ in good if m not in self._claimed_away]
            if mine:
                self.redis.xack(s.name, s.group, *mine)
            for message_id, transaction in good:
                self._claimed_away.discard(message_id)
                if self._awaiting.get(transaction.transaction_id) == (message_id, redelivered):
                    del self._awaiting[transaction.transaction_id]  # not if read again since
            self._trim()

        self.log.add(logged, on_written=committed)
        if self.shadow is not None:
            self.shadow.submit(self.lineup, scored)
        return len(good)

    def _commit_once(self, rows: pa.Table, commit) -> None:
        """The log writer's guard: under the stream's commit lock, which its workers share,
        commit the rows less those another worker logs: of messages claimed away from this
        one since it read them, and of messages delivered again that the log already holds.
        Under the lock, no two workers can both find a transaction missing and both log it."""
        s = self.settings
        with self.redis.lock(f"{s.name}:log-commit", timeout=COMMIT_LOCK_S,
                             blocking_timeout=COMMIT_LOCK_S):  # fmt: skip
            commit(self._admitted(rows))

    def _admitted(self, rows: pa.Table) -> pa.Table:
        import pyarrow.compute as pc

        entries = [self._awaiting.get(t) for t in rows["transaction_id"].to_pylist()]
        # unknown: the same message read again and already cleaned up; checked in the log
        again = pa.array([e is None or e[1] for e in entries])
        fresh = [e[0] for e in entries if e and not e[1]]
        owned = self._owned(fresh)
        lost = {m for m in fresh if m not in owned}
        self._claimed_away.update(lost)
        kept = pa.array([not (e and e[0] in lost) for e in entries])
        first_delivery = rows.filter(pc.and_(kept, pc.invert(again)))
        delivered_again = not_yet_logged(self.log.uri, rows.filter(again))
        admitted = pa.concat_tables([first_delivery, delivered_again])
        # a message this worker read twice (claimed back after idling) waits here twice
        seen: set = set()
        once = [not (t in seen or seen.add(t)) for t in admitted["transaction_id"].to_pylist()]
        return admitted.filter(pa.array(once, pa.bool_()))

    def _owned(self, message_ids: list) -> set:
        """Which of `message_ids` are still pending with this consumer (not claimed away)."""
        if not message_ids:
            return set()
        s = self.settings
        ordered = sorted(message_ids, key=_id_key)
        owned, start = set(), ordered[0]
        while True:
            page = self.redis.xpending_range(s.name, s.group, min=start, max=ordered[-1],
                                             count=1000, consumername=s.consumer)  # fmt: skip
            owned.update(entry["message_id"] for entry in page)
            if len(page) < 1000:
                return owned & set(message_ids)
            start = "(" + text(page[-1]["message_id"])

    def _score(self, good: list) -> tuple[list, object]:
        """(the messages that scored, their `Scored` batch). When the batch fails, each message
        is tried alone: one that fails stays pending for another try, or is dead-lettered once
        delivered `max_tries` times."""
        if not good:
            return [], None
        try:
            return good, self.lineup.score([t.scoring_row() for _, t in good])
        except Exception:
            log.exception("a batch of %d failed to score; trying each alone", len(good))
        kept = []
        for message_id, transaction in good:
            try:
                self.lineup.score([transaction.scoring_row()])
                kept.append((message_id, transaction))
            except Exception as error:
                self._failed(message_id, transaction, error)
        return self._score(kept) if kept else ([], None)

    def _failed(self, message_id, transaction: "Transaction", error: Exception) -> None:
        s = self.settings
        [pending] = self.redis.xpending_range(s.name, s.group, message_id, message_id, 1)
        tries = pending["times_delivered"]
        if tries < self.max_tries:
            log.warning("message %s failed to score (try %d of %d): %s",
                        text(message_id), tries, self.max_tries, error)  # fmt: skip
            return
        pipe = self.redis.pipeline(transaction=True)
        dead_letter(pipe, s, message_id, {"transaction": transaction.model_dump_json()},
                    f"failed to score {tries} times: {error}")  # fmt: skip
        pipe.xack(s.name, s.group, message_id)
        pipe.execute()
        self.metrics.dead_letters.inc()

    def _trim(self) -> None:
        """Drop the messages over an hour old that every consumer has acknowledged (at most
        every TRIM_EVERY_S): the last hour stays for a restarted worker's velocity windows."""
        now = time.monotonic()
        if now - self._trimmed_at < TRIM_EVERY_S:
            return
        self._trimmed_at = now
        s = self.settings
        keep_from = f"{_now_ms() - HOUR_MS}-0"
        pending = self.redis.xpending(s.name, s.group)
        self.metrics.stream_pending.set(pending["pending"])
        oldest_pending = pending["min"]
        if oldest_pending is not None and _id_key(oldest_pending) < _id_key(keep_from):
            keep_from = oldest_pending
        self.redis.xtrim(s.name, minid=keep_from, approximate=False)

    def _push_velocity(self, rows: list[dict]) -> None:
        ordered = sorted(rows, key=lambda r: r["event_timestamp"])
        for entity, counter in self.counters.items():
            key = f"{entity}_id"
            newest = {}  # the online store keeps one value per entity: the newest
            for r in ordered:
                at = r["event_timestamp"]
                counts = counter.add(r[key], at, r["amount_usd"], r["transaction_id"])
                if counts is not None:  # None: counted before (a message delivered again)
                    newest[r[key]] = {key: r[key], "event_timestamp": at, **counts}
            counter.evict_idle()
            if newest:
                self.velocity_push.push(f"{entity}_velocity_push", list(newest.values()))

    def close(self) -> None:
        """Push the velocity sent, commit the scores and acknowledge their messages."""
        self.velocity_push.close()
        self.log.close()
        if self.shadow is not None:
            self.shadow.close()
            self.shadow.log.close()

    def run(
        self, batch: int, block_ms: int, max_idle_s: float, until_idle: bool = False
    ) -> dict[str, int]:
        """Consume until stopped (or, `until_idle`, until a read finds nothing), then commit
        and acknowledge what was scored; the counts."""
        counts = {"scored": 0, "dead_lettered": 0}
        self.velocity_push.wait_ready()  # scoring ahead of the pushes would only queue them
        heap.settle()  # the velocity windows hold ~an hour of events as Python objects
        try:
            while not self.stopping:
                messages, redelivered = self._read(batch, block_ms, int(max_idle_s * 1000))
                if self.models is not None:  # swapped between batches, never within one
                    self.lineup = self.models.current
                if not messages:
                    if until_idle:
                        break
                    continue
                scored = self.process(messages, redelivered)
                counts["scored"] += scored
                counts["dead_lettered"] += len(messages) - scored
                log.debug("scored %d, dead-lettered %d", scored, len(messages) - scored)
        finally:  # an error too: what was scored is committed and acknowledged
            if self.models is not None:
                self.models.stop()
            self.close()
        log.info("scored %d, dead-lettered %d", counts["scored"], counts["dead_lettered"])
        return counts


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _id_key(message_id) -> tuple[int, int]:
    """A stream id (`<ms>-<seq>`) as a tuple that orders as Redis orders ids."""
    ms, _, seq = text(message_id).partition("-")
    return int(ms), int(seq or 0)


def build_worker(flush_s: float = 1.0, max_tries: int = 5, metrics_port: int = 0) -> StreamWorker:
    """A worker on this environment's stream, champion (registry, followed as it moves),
    feature store and lakehouse; its log rows are committed every `flush_s` seconds; its
    Prometheus metrics served on `metrics_port` (0: not served)."""
    import mlflow
    import redis

    from features.lookup import OnlineFeatures
    from features.store import FEATURE_SERVICE, open_serving_store
    from ml.registry import version_by_alias
    from serving.metrics import stream_metrics
    from serving.model_follow import follower_from_environment, registry_scorer
    from serving.prediction_log import PredictionLogWriter
    from serving.scoring import CircuitBreaker
    from serving.shadow import ShadowScoring
    from serving.velocity_push import BackgroundPush
    from settings.env import (
        fraud_home,
        lakehouse_root,
        mlflow_tracking_uri,
        prepare_process_environment,
    )

    prepare_process_environment()
    mlflow.set_tracking_uri(mlflow_tracking_uri())
    champion = version_by_alias("champion")
    if champion is None:
        raise LookupError("no version of the model holds alias 'champion': nothing to score with")
    store = open_serving_store(fraud_home())
    features = OnlineFeatures.for_service(store, FEATURE_SERVICE)
    # A batch of hundreds of rows: the API's 250 ms lookup budget is not this path's.
    breaker = CircuitBreaker(timeout_ms=5_000)
    models = follower_from_environment(registry_scorer(champion.version, features, breaker))
    settings = StreamSettings.from_environment()
    metrics = stream_metrics(metrics_port)
    log_uri = f"{lakehouse_root()}/monitoring/prediction_log"
    log_writer = PredictionLogWriter(log_uri, flush_s=flush_s, metrics=metrics)
    # the shadow's rows bypass the stream's exactly-once guard, which keeps one row per
    # transaction: a shadow row is told apart by its path, and a redelivery may score it twice
    shadow = ShadowScoring(PredictionLogWriter(log_uri, flush_s=max(flush_s, 5.0)), metrics)
    return StreamWorker(
        settings,
        models.current.champion,
        BackgroundPush(feast_push, VELOCITY_KEYS),
        log_writer,
        redis.Redis.from_url(settings.url),
        max_tries=max_tries,
        models=models,
        metrics=metrics,
        shadow=shadow,
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
    parser.add_argument(
        "--max-tries", type=int, default=5, help="deliveries of a message that fails to score"
    )
    parser.add_argument("--until-idle", action="store_true", help="stop once the stream is drained")
    parser.add_argument(
        "--metrics-port", type=int, default=int(os.environ.get("STREAM_METRICS_PORT", 9108)),
        help="Prometheus metrics on http://0.0.0.0:PORT/metrics (0: off; STREAM_METRICS_PORT)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    worker = build_worker(args.flush_s, args.max_tries, args.metrics_port)

    def stop(*_):
        worker.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    s = worker.settings
    log.info("consuming %s as %s/%s with model v%s", s.name, s.group, s.consumer,
             worker.lineup.model_version)  # fmt: skip
    counts = worker.run(args.batch, args.block_ms, args.max_idle_s, args.until_idle)
    log.info("stopped: %s", counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
