"""The stream worker on a real Redis Stream: scores reach the prediction log once each, broken
messages go to the dead-letter stream, velocity is pushed, and a worker killed with SIGKILL
mid-stream and restarted loses and doubles nothing."""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

import dagster as dg
import pytest
import redis

from demo.services import ensure_redis, flush_redis_db
from lakehouse.delta import ALL_DAYS, read_days, table_exists

pytestmark = pytest.mark.integration
STREAM_DB = 14  # apart from the online-store tests' database
NOW = dt.datetime.now(dt.UTC)
RECENT = (NOW.date() - dt.timedelta(days=2), NOW.date() - dt.timedelta(days=1))


@pytest.fixture
def streaming(fraud_home, monkeypatch):
    """Features online (SQLite), a champion in the registry, an empty stream."""
    from tests.support.champions import features_online_with_a_champion

    ensure_redis()
    flush_redis_db(STREAM_DB)
    monkeypatch.setenv("STREAM_URL", f"redis://127.0.0.1:6379/{STREAM_DB}")
    resources, version = features_online_with_a_champion(fraud_home, RECENT)
    return redis.Redis(db=STREAM_DB), version, resources["feast"].store()


def _logged(home) -> list[str]:
    uri = str(home / "lakehouse/monitoring/prediction_log")
    if not table_exists(uri):
        return []
    log = read_days(uri, *ALL_DAYS, columns=["transaction_id", "path"]).to_pandas()
    return log.loc[log["path"] == "stream", "transaction_id"].tolist()


def test_messages_are_scored_logged_once_and_broken_ones_dead_lettered(streaming, fraud_home):
    import mlflow
    from feast.data_source import PushMode

    from features.lookup import OnlineFeatures
    from features.store import FEATURE_SERVICE
    from serving.prediction_log import PredictionLogWriter
    from serving.scoring import CircuitBreaker, Scorer
    from serving.stream import StreamWorker
    from serving.velocity_push import InlinePush
    from settings.stream import StreamSettings
    from simulator.stream import publish

    client, version, store = streaming
    settings = StreamSettings.from_environment()
    model = mlflow.pyfunc.load_model(f"models:/fraud-detector/{version}")
    features = OnlineFeatures.for_service(store, FEATURE_SERVICE)
    scorer = Scorer(model, version, features, breaker=CircuitBreaker(timeout_ms=5_000))  # as main
    worker = StreamWorker(
        settings, scorer,
        InlinePush(lambda source, frame: store.push(source, frame, to=PushMode.ONLINE)),
        PredictionLogWriter(str(fraud_home / "lakehouse/monitoring/prediction_log"), flush_s=60),
        client,
    )  # fmt: skip
    publish(client, settings.name, 300, rate=0, customers=50, malformed_rate=0.05)
    while (read := worker._read(120, 100, 60_000))[0]:
        worker.process(*read)
    assert client.xpending(settings.name, settings.group)["pending"] > 0  # not committed yet
    assert worker.log.flush()
    logged, dead = _logged(fraud_home), client.xrange(settings.dead_letter)
    assert len(logged) == len(set(logged)) and len(logged) + len(dead) == 300
    assert 0 < len(dead) < 40 and all(b"error" in fields for _, fields in dead)
    assert client.xpending(settings.name, settings.group)["pending"] == 0
    velocity = OnlineFeatures.for_views(store, ["card_velocity"])
    card = client.xrange(settings.name, count=1)[0][1][b"transaction"]
    pushed = velocity.lookup([{"card_id": json.loads(card)["card_id"]}])
    assert pushed["card_velocity__txn_count_1h"][0] >= 1  # pushed, online

    # the same messages delivered again (a lost ack) are not logged twice
    entries = client.xrange(settings.name)
    worker.process([(mid, fields) for mid, fields in entries], redelivered=True)
    assert worker.log.flush()
    assert sorted(_logged(fraud_home)) == sorted(logged)
    worker.log.close()


def _worker(streaming, fraud_home, scorer=None, consumer="c1"):
    """A stream worker as `main` builds it, on the test's stream, store and lakehouse."""
    import dataclasses

    import mlflow
    from feast.data_source import PushMode

    from features.lookup import OnlineFeatures
    from features.store import FEATURE_SERVICE
    from serving.prediction_log import PredictionLogWriter
    from serving.scoring import CircuitBreaker, Scorer
    from serving.stream import StreamWorker
    from serving.velocity_push import InlinePush
    from settings.stream import StreamSettings

    client, version, store = streaming
    if scorer is None:
        model = mlflow.pyfunc.load_model(f"models:/fraud-detector/{version}")
        features = OnlineFeatures.for_service(store, FEATURE_SERVICE)
        scorer = Scorer(model, version, features, breaker=CircuitBreaker(timeout_ms=5_000))
    settings = dataclasses.replace(StreamSettings.from_environment(), consumer=consumer)
    return StreamWorker(
        settings, scorer,
        InlinePush(lambda source, frame: store.push(source, frame, to=PushMode.ONLINE)),
        PredictionLogWriter(str(fraud_home / "lakehouse/monitoring/prediction_log"), flush_s=60),
        client, max_tries=3,
    )  # fmt: skip


def _drain(worker, max_idle_ms: int = 60_000) -> None:
    while (read := worker._read(100, 50, max_idle_ms))[0]:
        worker.process(*read)


@pytest.mark.faults
def test_a_restarted_worker_rebuilds_its_velocity_and_a_redelivery_counts_once(
    streaming, fraud_home
):
    from simulator.stream import publish

    client, _, _ = streaming
    first = _worker(streaming, fraud_home)
    publish(client, first.settings.name, 200, rate=0, customers=20)
    _drain(first)
    assert first.log.flush()
    entries = client.xrange(first.settings.name)
    first.process(entries, redelivered=True)  # every message again: a lost acknowledgement
    assert first.log.flush()
    assert sorted(_logged(fraud_home)) == sorted(set(_logged(fraud_home)))

    restarted = _worker(streaming, fraud_home, consumer="c2")  # a new process, from zero
    assert restarted.rebuilt == 200
    later = dt.datetime.now(dt.UTC)
    for entity, key in (("card", "card_id"), ("customer", "customer_id")):
        for _, fields in entries[:20]:
            transaction = json.loads(fields[b"transaction"])
            new = (transaction[key], later, 1.0, f"new-{transaction['transaction_id']}")
            before = first.counters[entity].add(*new)
            assert before is not None and before == restarted.counters[entity].add(*new)
    first.log.close()
    restarted.log.close()


@pytest.mark.faults
def test_a_message_that_keeps_failing_to_score_is_dead_lettered_after_its_tries(
    streaming, fraud_home
):
    from simulator.stream import publish

    client = streaming[0]
    plain = _worker(streaming, fraud_home)
    real, stream = plain.scorer, plain.settings.name
    plain.log.close()
    publish(client, stream, 50, rate=0, customers=10)
    poison = json.loads(client.xrange(stream, count=1)[0][1][b"transaction"])

    class Poisoned:  # the model fails on one transaction, whatever batch it is in
        inputs, model_version, breaker = real.inputs, real.model_version, real.breaker

        def score(self, rows):
            if any(r["transaction_id"] == poison["transaction_id"] for r in rows):
                raise RuntimeError("the model cannot score this transaction")
            return real.score(rows)

    worker = _worker(streaming, fraud_home, scorer=Poisoned())
    for _ in range(4):  # each read claims again what failed (idle > 0 ms)
        messages, redelivered = worker._read(100, 50, 0)
        worker.process(messages, redelivered)
        assert worker.log.flush()
    dead = client.xrange(worker.settings.dead_letter)
    assert len(dead) == 1 and b"failed to score 3 times" in dead[0][1][b"error"]
    assert poison["transaction_id"] in dead[0][1][b"fields"].decode()
    logged = _logged(fraud_home)
    assert len(logged) == 49 and poison["transaction_id"] not in logged
    assert client.xpending(worker.settings.name, worker.settings.group)["pending"] == 0
    worker.log.close()


def test_the_stream_is_trimmed_to_its_last_hour_once_its_messages_are_logged(streaming, fraud_home):
    from serving import stream as stream_module
    from simulator.stream import publish

    client = streaming[0]
    worker = _worker(streaming, fraud_home)
    name = worker.settings.name
    publish(client, "scratch", 30, rate=0, customers=10)
    bodies = [fields for _, fields in client.xrange("scratch")]
    two_hours_ago = stream_module._now_ms() - 2 * 3_600_000
    for i, fields in enumerate(bodies[:20]):  # arrived two hours ago
        client.xadd(name, fields, id=f"{two_hours_ago}-{i}")
    for fields in bodies[20:]:
        client.xadd(name, fields)
    worker.process(*worker._read(10, 50, 60_000))  # ten old ones scored, not committed yet
    worker._trimmed_at = float("-inf")
    worker._trim()
    assert client.xlen(name) == 30  # nothing trimmed past a message not yet acknowledged
    _drain(worker)
    assert worker.log.flush()  # the commit acknowledges (and trims, at most every 10 s)
    worker._trimmed_at = float("-inf")
    worker._trim()
    assert client.xlen(name) == 10  # the last hour stays, for a restarted worker's windows
    assert len(_logged(fraud_home)) == 30
    worker.log.close()


@pytest.mark.faults
def test_two_workers_claiming_each_others_messages_log_each_transaction_once(streaming, fraud_home):
    from simulator.stream import publish

    client = streaming[0]
    slow, other = (_worker(streaming, fraud_home, consumer=c) for c in ("slow", "other"))
    name, group = slow.settings.name, slow.settings.group
    publish(client, name, 80, rate=0, customers=10)
    slow.process(*slow._read(60, 50, 60_000))  # read and scored, not committed yet
    messages, again = other._read(20, 50, 0)  # idle past 0 ms: claimed away from the slow one
    assert again and len(messages) == 20
    other.process(messages, again)
    assert other.log.flush() and slow.log.flush()  # the claimer commits first
    slow.process(*slow._read(20, 50, 60_000))  # the last twenty
    other.process(*other._read(20, 50, 0))
    assert slow.log.flush() and other.log.flush()  # the slow one commits first
    logged = _logged(fraud_home)
    assert len(logged) == 80 and len(set(logged)) == 80
    assert client.xpending(name, group)["pending"] == 0
    slow.log.close()
    other.log.close()


@pytest.mark.faults
def test_two_worker_processes_one_killed_and_restarted_log_every_transaction_once(
    streaming, fraud_home
):
    from settings.stream import StreamSettings
    from simulator.stream import publish

    client = streaming[0]
    settings = StreamSettings.from_environment()
    total = 6_000
    publish(client, settings.name, total, rate=0)
    # idle past half a second: the two claim each other's messages while both are alive
    command = [sys.executable, "-m", "serving.stream", "--batch", "100", "--block-ms", "200",
               "--max-idle-s", "0.5", "--flush-s", "0.2"]  # fmt: skip

    def start(consumer: str) -> subprocess.Popen:
        env = {**os.environ, "STREAM_CONSUMER": consumer}
        return subprocess.Popen(command, env=env, start_new_session=True)

    workers = {c: start(c) for c in ("w1", "w2")}
    deadline = time.monotonic() + 240
    try:
        while len(_logged(fraud_home)) < 1_000:
            assert all(w.poll() is None for w in workers.values()), "a worker stopped"
            assert time.monotonic() < deadline, "the workers logged little in 4 minutes"
            time.sleep(0.1)
        os.killpg(workers["w1"].pid, signal.SIGKILL)
        workers["w1"].wait()
        workers["w1"] = start("w1")
        while (
            client.xpending(settings.name, settings.group)["pending"]
            or len(set(_logged(fraud_home))) < total
        ):
            assert all(w.poll() is None for w in workers.values()), "a worker stopped"
            assert time.monotonic() < deadline + 120, "the stream was not drained"
            time.sleep(0.5)
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=60)
    logged = _logged(fraud_home)
    assert len(logged) == total and len(set(logged)) == total


@pytest.mark.faults
def test_a_worker_killed_mid_stream_and_restarted_loses_and_doubles_nothing(streaming, fraud_home):
    from settings.stream import StreamSettings
    from simulator.stream import publish

    client, _, _ = streaming
    settings = StreamSettings.from_environment()
    total = 10_000  # seconds of work, so that the kill lands mid-stream
    publish(client, settings.name, total, rate=0)
    command = [sys.executable, "-m", "serving.stream", "--batch", "100", "--block-ms", "200",
               "--max-idle-s", "1", "--flush-s", "0.1"]  # fmt: skip
    worker = subprocess.Popen(command, env=dict(os.environ), start_new_session=True)
    deadline = time.monotonic() + 180
    while len(_logged(fraud_home)) < 300:  # well under way
        assert worker.poll() is None, "the worker stopped on its own"
        assert time.monotonic() < deadline, "the worker scored nothing in 3 minutes"
        time.sleep(0.05)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    assert len(_logged(fraud_home)) < total, "the stream was done before the kill"

    restarted = subprocess.Popen(command, env=dict(os.environ), start_new_session=True)
    try:
        while (
            client.xpending(settings.name, settings.group)["pending"]
            or len(_logged(fraud_home)) < total
        ):
            assert restarted.poll() is None, "the restarted worker stopped"
            assert time.monotonic() < deadline + 120, "the stream was not drained"
            time.sleep(0.5)
    finally:
        os.killpg(restarted.pid, signal.SIGTERM)
        restarted.wait(timeout=60)
    logged = _logged(fraud_home)
    assert len(logged) == total and len(set(logged)) == total


def test_a_running_worker_swaps_to_the_new_champion_between_batches(streaming, fraud_home):
    """Hot swap on the stream: `champion` moves while a worker process scores; it goes on
    without a restart, each batch scored by one version, the old before the new, nothing lost."""
    from lakehouse.delta import ALL_DAYS, read_days
    from settings.stream import StreamSettings
    from simulator.stream import transactions
    from tests.support.champions import register_champion

    client, old, _ = streaming
    name, source = StreamSettings.from_environment().name, transactions(200, 7, NOW.date())

    def publish(count: int) -> int:  # the next `count` transactions of one simulated day
        sent_at = dt.datetime.now(dt.UTC).isoformat()
        for _ in range(count):
            body = json.dumps({**next(source), "event_timestamp": sent_at})
            client.xadd(name, {"transaction": body})
        return count

    publish(1_000)
    command = [sys.executable, "-m", "serving.stream", "--batch", "100", "--block-ms", "200",
               "--flush-s", "0.2"]  # fmt: skip
    worker = subprocess.Popen(command, env={**os.environ, "FRAUD_MODEL_POLL_S": "0.5"},
                              start_new_session=True)  # fmt: skip
    uri, total = str(fraud_home / "lakehouse/monitoring/prediction_log"), 1_000
    deadline = time.monotonic() + 180

    def versions() -> list[str]:  # in the order of scoring
        if not table_exists(uri):
            return []
        log = read_days(uri, *ALL_DAYS, columns=["scored_at", "model_version"])
        return log.sort_by("scored_at")["model_version"].to_pylist()

    try:
        while len(versions()) < 300:
            assert worker.poll() is None and time.monotonic() < deadline, "nothing scored"
            time.sleep(0.1)
        new = register_champion(epochs=1)  # `champion` moves to it
        while new not in versions():  # traffic goes on until the worker has swapped
            assert worker.poll() is None and time.monotonic() < deadline, "no swap in time"
            total += publish(100)
            time.sleep(0.2)
        while len(_logged(fraud_home)) < total:
            assert worker.poll() is None and time.monotonic() < deadline, "not drained"
            time.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
    logged, order = _logged(fraud_home), versions()
    assert len(logged) == total and len(set(logged)) == total
    switch = order.index(new)
    assert order[0] == old and set(order[:switch]) == {old} and set(order[switch:]) == {new}


def test_the_backlog_is_scored_from_dagster_and_the_job_stops_when_it_is_drained(
    streaming, fraud_home
):
    from jobs.stream import stream_drain_job
    from settings.stream import StreamSettings
    from simulator.stream import publish

    client, version, _ = streaming
    publish(client, StreamSettings.from_environment().name, 120, rate=0)
    result = stream_drain_job.execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert result.success
    assert result.output_for_node("drain_stream") == {"scored": 120, "dead_lettered": 0}
    [event] = result.get_asset_materialization_events()
    meta = event.event_specific_data.materialization.metadata
    assert meta["stream_rows_written"].value == 120 and meta["model_version"].value == version
    assert len(_logged(fraud_home)) == 120
