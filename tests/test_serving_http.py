"""The scoring API over real HTTP: `bentoml serve` started by the test on a champion in BentoML's
store and features in a Redis of its own (so that the test can stop it): auth, 422, 413, 429,
readiness, unknown entities, and the degraded mode while the feature store is down. The Redis
asks for a password, which reaches no output of the service, no bento and no MLflow record."""

import concurrent.futures
import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import dagster as dg
import mlflow
import pytest

pytestmark = pytest.mark.integration
REDIS_PORT, PORT, KEY = 6391, 3961, "test-key"
REDIS_PASSWORD = "redis-serving-sentinel-3d8e"
REDIS_CLI = ["redis-cli", "-p", str(REDIS_PORT), "-a", REDIS_PASSWORD, "--no-auth-warning"]
NOW = dt.datetime.now(dt.UTC)
RECENT = (NOW.date() - dt.timedelta(days=2), NOW.date() - dt.timedelta(days=1))
TXN = {
    "transaction_id": "T1",
    "event_timestamp": NOW.isoformat(),
    "customer_id": "C1",
    "card_id": "K1",
    "merchant_id": "M1",
    "merchant_category": "electronics",
    "merchant_country": "US",
    "device_id": "D1",
    "channel": "online",
    "amount": "250.00",
    "currency": "USD",
}


def _redis(command: str) -> None:
    if command == "start":
        subprocess.run(
            ["redis-server", "--daemonize", "yes", "--port", str(REDIS_PORT), "--bind",
             "127.0.0.1", "--save", "", "--appendonly", "no", "--requirepass", REDIS_PASSWORD],
            check=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while subprocess.run([*REDIS_CLI, "ping"], capture_output=True).stdout.strip() != b"PONG":
            assert time.monotonic() < deadline, "test Redis did not start"
            time.sleep(0.1)
    else:
        subprocess.run([*REDIS_CLI, "shutdown", "nosave"])


def _call(path: str, body=None, key: str | None = KEY, raw: bytes | None = None):
    """(status, decoded JSON or text) of a request to the service."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", data=data)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("X-API-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            status, payload = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode()


def _wait_ready(expected: int = 200, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if _call("/readyz", key=None)[0] == expected:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"/readyz did not answer {expected} in {seconds:g} s")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """Features online in the test Redis, a champion in BentoML's store, the API serving it."""
    from serving.bento import build_in_subprocess
    from settings.env import prepare_process_environment
    from tests.support.champions import features_online_with_a_champion

    home = tmp_path_factory.mktemp("serving") / "fraud_home"
    _redis("start")
    env = {
        "FRAUD_HOME": str(home),
        "BENTOML_HOME": str(home / "bentoml"),
        "FEAST_ONLINE_STORE": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{REDIS_PORT}",
        "FRAUD_API_KEY": KEY,
        "FRAUD_WORKERS": "2",  # as on the 2-core machines the service is rated on
        "FRAUD_MAX_CONCURRENCY": "8",  # in all: 4 a worker
        "FRAUD_LOOKUP_TIMEOUT_MS": "1000",  # a busy CI machine is not a slow store (< 2 s: 504)
        "FRAUD_LOG_FLUSH_S": "0.3",
        "FRAUD_LOG_MAX_PENDING": "1000",  # per worker: an outage of the log's store sheds soon
        "FRAUD_MODEL_POLL_S": "1",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        prepare_process_environment()
        _, version = features_online_with_a_champion(home, RECENT)
        mlflow.set_tracking_uri(None)
    # in a fresh interpreter, which reads this BENTOML_HOME
    build_in_subprocess({**env, "MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow/mlflow.db"})
    output = (home / "api.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", "serving.service:FraudScoring",
         "--port", str(PORT)],
        # the registry the API follows, named rather than inherited from this process
        env={**os.environ, **env, "MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow/mlflow.db"},
        start_new_session=True,
        stdout=output,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_ready()
        yield version, home, env, server.pid
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        output.close()
        _redis("stop")


def test_a_transaction_is_scored_with_its_features_and_the_champions_version(service):
    status, answer = _call("/score", {"transaction": TXN})
    assert status == 200, answer
    assert answer["transaction_id"] == "T1" and answer["model_version"] == service[0]
    assert 0 <= answer["score"] <= 1 and answer["decision"] in {"approve", "review", "decline"}
    assert not answer["degraded"] and "unknown_customer" not in answer["reasons"]
    assert answer["latency_ms"] > 0
    stranger = {**TXN, "customer_id": "nobody", "device_id": None}
    status, answer = _call("/score", {"transaction": stranger})
    assert status == 200 and "unknown_customer" in answer["reasons"] and not answer["degraded"]


def test_a_list_of_transactions_is_scored_in_one_call(service):
    second = {**TXN, "transaction_id": "T2", "customer_id": "nobody"}
    status, answers = _call("/score_batch", {"transactions": [TXN, second]})
    assert status == 200, answers
    assert [a["transaction_id"] for a in answers] == ["T1", "T2"]
    assert "unknown_customer" in answers[1]["reasons"] and answers[0]["model_version"] == service[0]
    assert _call("/score_batch", {"transactions": []}) == (200, [])


def _parity_transactions(n: int) -> list[dict]:
    """Simulated transactions, a third of them of the customers, merchant and device the
    feature store knows, all on yesterday's partition."""
    from simulator.stream import transactions

    at = dt.datetime.combine(RECENT[1], dt.time(12), dt.UTC)
    out = []
    for i, fields in zip(range(n), transactions(300, 5, RECENT[1]), strict=False):
        if i % 3 == 0:
            fields.update(customer_id=["C1", "C2"][i % 2], merchant_id="M1", device_id="D1")
        out.append({**fields, "transaction_id": f"P{i}",
                    "event_timestamp": (at + dt.timedelta(seconds=i)).isoformat()})  # fmt: skip
    return out


def test_online_batch_and_stream_give_the_same_score_for_the_same_transaction(service, monkeypatch):
    import numpy as np
    import pyarrow as pa
    import redis
    from feast.data_source import PushMode

    from assets.scoring import batch_scoring
    from features.lookup import OnlineFeatures
    from features.store import FEATURE_SERVICE
    from lakehouse.delta import ALL_DAYS, overwrite_days, read_days
    from resources import build_resources
    from serving.prediction_log import PredictionLogWriter
    from serving.scoring import CircuitBreaker, Scorer
    from serving.stream import StreamWorker
    from serving.transaction import Transaction
    from serving.velocity_push import InlinePush
    from settings.stream import StreamSettings

    version, home, env, _ = service
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home}/mlflow/mlflow.db")
    monkeypatch.setenv("STREAM_URL", f"redis://:{REDIS_PASSWORD}@127.0.0.1:{REDIS_PORT}/1")
    txns = _parity_transactions(1000)

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:  # under a worker's 429 limit
        answers = list(pool.map(lambda t: _call("/score", {"transaction": t}), txns))
    assert {status for status, _ in answers} == {200}
    online = {a["transaction_id"]: a["score"] for _, a in answers}

    silver = [{**Transaction(**t).scoring_row(), "day": RECENT[1]} for t in txns]
    overwrite_days(str(home / "lakehouse/silver/transactions"), pa.Table.from_pylist(silver),
                   RECENT[1], RECENT[1])  # fmt: skip
    resources = build_resources()
    # Batch's online path: the same store as the API (closed days are scored point in time,
    # on the training set's features: test_training_loop).
    online_features = {"ops": {"batch_scoring": {"config": {"features": "online"}}}}
    assert dg.materialize([batch_scoring], resources=resources, run_config=online_features,
                          partition_key=RECENT[1].isoformat()).success  # fmt: skip
    batch = read_days(str(home / "lakehouse/scoring/batch_scores"), *ALL_DAYS).to_pandas()
    batch = dict(zip(batch["transaction_id"], batch["score"], strict=True))

    client = redis.Redis(port=REDIS_PORT, db=1, password=REDIS_PASSWORD)
    client.flushdb()
    settings = StreamSettings.from_environment()
    for t in txns:
        client.xadd(settings.name, {"transaction": json.dumps(t)})
    store = resources["feast"].store()
    resources["mlflow"].activate()
    model = mlflow.pyfunc.load_model(f"models:/fraud-detector/{version}")
    # as the worker's main builds it: a 1,000-row lookup may take longer than the API's 250 ms
    scorer = Scorer(model, version, OnlineFeatures.for_service(store, FEATURE_SERVICE),
                    breaker=CircuitBreaker(timeout_ms=5_000))  # fmt: skip
    worker = StreamWorker(
        settings, scorer,
        InlinePush(lambda source, frame: store.push(source, frame, to=PushMode.ONLINE)),
        PredictionLogWriter(str(home / "lakehouse/monitoring/prediction_log")), client,
    )  # fmt: skip
    # one read: velocity pushed by the stream cannot reach its own later scores
    assert worker.process(*worker._read(len(txns), 100, 60_000)) == len(txns)
    worker.log.close()
    log = read_days(str(home / "lakehouse/monitoring/prediction_log"), *ALL_DAYS).to_pandas()
    stream = log[log["path"] == "stream"]
    assert not stream["degraded"].any() and not any(a["degraded"] for _, a in answers)
    stream = dict(zip(stream["transaction_id"], stream["score"], strict=True))

    ids = [t["transaction_id"] for t in txns]
    assert set(online) == set(batch) == set(stream) == set(ids)
    scores = np.array([[online[i], batch[i], stream[i]] for i in ids])
    assert np.abs(scores - scores[:, :1]).max() <= 1e-6
    assert scores[:, 0].std() > 0  # the transactions differ, and so do their scores


def test_every_online_score_reaches_the_prediction_log(service):
    from lakehouse.delta import ALL_DAYS, read_days

    status, answer = _call("/score", {"transaction": {**TXN, "transaction_id": "LOGGED"}})
    assert status == 200
    uri = str(service[1] / "lakehouse/monitoring/prediction_log")
    deadline = time.monotonic() + 20
    while True:
        try:
            log = read_days(uri, *ALL_DAYS).to_pandas()
            logged = log[log["transaction_id"] == "LOGGED"]
            if len(logged):
                break
        except Exception:  # not created yet
            pass
        assert time.monotonic() < deadline, "the score did not reach the prediction log in 20 s"
        time.sleep(0.3)
    [row] = logged.to_dict("records")
    assert row["path"] == "online" and row["score"] == pytest.approx(answer["score"])
    assert row["model_version"] == service[0] and row["decision"] == answer["decision"]


def test_without_the_api_key_the_answer_is_401_and_the_probes_stay_open(service):
    assert _call("/score", {"transaction": TXN}, key=None)[0] == 401
    assert _call("/score", {"transaction": TXN}, key="wrong")[0] == 401
    assert _call("/healthz", key=None)[0] == 200
    status, spec = _call("/docs.json", key=None)
    assert status == 200 and "/score" in spec["paths"]


@pytest.mark.parametrize(
    ("change", "field"),
    [({"amount": "-5"}, "amount"), ({"currency": "JPY"}, "currency"),
     ({"event_timestamp": "yesterday"}, "event_timestamp")],
)  # fmt: skip
def test_a_malformed_transaction_gets_422_naming_the_field(service, change, field):
    status, answer = _call("/score", {"transaction": {**TXN, **change}})
    assert status == 422 and field in json.dumps(answer)


def test_the_openapi_spec_fuzzed_by_schemathesis_never_gets_a_5xx(service, tmp_path):
    done = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run",
         f"http://127.0.0.1:{PORT}/docs.json", "-H", f"X-API-Key: {KEY}",
         "--checks", "not_a_server_error", "--max-examples", "60", "--seed", "1"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,  # its cache stays out
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]


def test_a_body_not_declared_json_gets_415(service):
    request = urllib.request.Request(f"http://127.0.0.1:{PORT}/score", data=b"{}")
    request.add_header("Content-Type", "multipart/form-data")
    request.add_header("X-API-Key", KEY)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 415


def test_an_oversized_body_gets_413(service):
    status, answer = _call("/score", raw=b'{"transaction": "' + b"x" * 40_000 + b'"}')
    assert status == 413 and "bytes" in answer["error"]


def test_a_burst_beyond_the_concurrency_limit_gets_429_never_5xx(service):
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(lambda i: _call("/score", {"transaction": TXN})[0], range(96)))
    assert 429 in statuses and 200 in statuses
    assert set(statuses) <= {200, 429}


@pytest.mark.faults
def test_with_the_feature_store_down_requests_are_scored_degraded_and_readiness_fails(
    service, monkeypatch
):
    from assets.features import online_store
    from assets.partitions import range_tags
    from resources import build_resources

    _redis("stop")
    try:
        status, answer = _call("/score", {"transaction": TXN})
        assert status == 200 and answer["degraded"]
        assert answer["reasons"] == ["feature_store_unavailable"]  # defaults, flagged
        _wait_ready(expected=503, seconds=30)
    finally:
        _redis("start")
    # Back, but without its data (no persistence): answering is not holding. Not ready, and
    # every answer degraded as "store empty", not as an unknown customer.
    time.sleep(5.5)  # the breaker's cool-down
    status, answer = _call("/score", {"transaction": TXN})
    assert status == 200 and answer["degraded"]
    assert answer["reasons"] == ["feature_store_empty"]
    _wait_ready(expected=503, seconds=5)
    # Materialized again: ready, whole answers.
    for name, value in service[2].items():
        monkeypatch.setenv(name, value)
    assert dg.materialize(
        [online_store], resources=build_resources(), tags=range_tags(*RECENT)
    ).success
    _wait_ready(expected=200, seconds=30)
    time.sleep(5.5)  # the scorer asks whether the store is empty at most every 5 s
    status, answer = _call("/score", {"transaction": TXN})
    assert status == 200 and not answer["degraded"]
    assert "unknown_customer" not in answer["reasons"]


def _logged_ids(home: Path) -> list[str]:
    from lakehouse.delta import ALL_DAYS, read_days

    uri = str(home / "lakehouse/monitoring/prediction_log")
    return read_days(uri, *ALL_DAYS).column("transaction_id").to_pylist()


@pytest.mark.faults
def test_under_a_log_outage_the_api_sheds_load_and_killed_workers_lose_no_answered_score(
    service,
):
    import psutil

    _, home, _, server_pid = service
    assert _call("/score", {"transaction": TXN})[0] == 200
    log = home / "lakehouse/monitoring/prediction_log"
    deadline = time.monotonic() + 20
    while not (log / "_delta_log").is_dir():
        assert time.monotonic() < deadline, "the prediction log was not created in 20 s"
        time.sleep(0.3)
    aside = log.with_name("prediction_log.aside")
    log.rename(aside)
    log.write_text("the log's store is down")
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            ids = [f"J{i}" for i in range(2300)]
            answers = list(
                pool.map(
                    lambda i: _call("/score", {"transaction": {**TXN, "transaction_id": i}}), ids
                )
            )
        answered = [i for i, (status, _) in zip(ids, answers, strict=True) if status == 200]
        refused = [body for status, body in answers if status != 200]
        _wait_ready(expected=503, seconds=5)  # shedding: not ready, the balancer routes away
        # up to 1,000 pending rows a worker (plus the requests in flight when it filled), then 503
        assert 1000 <= len(answered) <= 2000 + 3
        assert refused and all(b["error"].startswith("prediction_log_backlog") for b in refused)
        workers = [
            p for p in psutil.Process(server_pid).children(recursive=True)
            if "worker" in " ".join(p.cmdline())
        ]  # fmt: skip
        assert workers
        for worker in workers:
            worker.kill()  # SIGKILL: the answered scores are in no process's memory any more
    finally:
        log.unlink()
        aside.rename(log)
    _wait_ready(seconds=120)  # workers started again, by BentoML's supervisor
    deadline = time.monotonic() + 30
    while not set(answered) <= set(_logged_ids(home)):
        assert time.monotonic() < deadline, "the journals were not replayed in 30 s"
        time.sleep(0.5)
    logged = [i for i in _logged_ids(home) if i.startswith("J")]
    assert sorted(logged) == sorted(answered)  # each once; none of the shed ones
    assert _call("/score", {"transaction": TXN})[0] == 200


def test_under_load_the_champion_moves_and_no_request_fails(service, monkeypatch):
    """Hot swap: requests keep coming while `champion` moves to a new version. None fails, each
    answer names the version that scored it (the log agrees), and once the workers have
    swapped, every answer carries the new version."""
    from tests.support.champions import register_champion

    old, home, env, _ = service
    answers, stop = [], threading.Event()

    def client(n: int) -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            status, body = _call("/score", {"transaction": {**TXN, "transaction_id": f"H{n}-{i}"}})
            version = body.get("model_version") if status == 200 else None
            answers.append((f"H{n}-{i}", status, version))

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        clients = [pool.submit(client, n) for n in range(4)]
        try:
            time.sleep(2)
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow/mlflow.db")
            new = register_champion(epochs=1)  # `champion` moves to it
            mlflow.set_tracking_uri(None)
            deadline = time.monotonic() + 90
            while sum(version == new for _, _, version in answers[-200:]) < 200:
                assert time.monotonic() < deadline, "the service still answers with the old model"
                time.sleep(0.5)
        finally:
            stop.set()
            for done in clients:
                done.result()
    assert new != old and {status for _, status, _ in answers} == {200}
    versions = [version for _, _, version in answers]
    assert versions[0] == old and set(versions) == {old, new}
    last_old = max(i for i, version in enumerate(versions) if version == old)
    assert len(versions) - last_old > 200  # and none after the swap
    deadline = time.monotonic() + 30
    answered = {transaction: version for transaction, _, version in answers}
    while not set(answered) <= set(logged := _logged_versions(home)):
        assert time.monotonic() < deadline, "the answers did not all reach the log in 30 s"
        time.sleep(0.5)
    assert {t: logged[t] for t in answered} == answered


def _logged_versions(home: Path) -> dict[str, str]:
    from lakehouse.delta import ALL_DAYS, read_days

    log = read_days(str(home / "lakehouse/monitoring/prediction_log"), *ALL_DAYS,
                    columns=["transaction_id", "model_version"])  # fmt: skip
    return dict(zip(*log.to_pydict().values(), strict=True))


API_SERIES = {
    "fraud_http_requests_total", "fraud_latency_seconds_bucket", "fraud_batch_size_bucket",
    "fraud_decisions_total", "fraud_breaker_open", "fraud_model_version_info",
    "fraud_model_swaps_total", "fraud_prediction_log_commit_seconds_bucket",
    "fraud_prediction_log_pending_rows", "bentoml_service_request_total",
}  # fmt: skip
STREAM_SERIES = {
    "fraud_latency_seconds_bucket", "fraud_batch_size_bucket", "fraud_decisions_total",
    "fraud_breaker_open", "fraud_model_version_info", "fraud_stream_lag_seconds_bucket",
    "fraud_stream_pending_messages", "fraud_stream_dead_letters_total",
    "fraud_prediction_log_commit_seconds_bucket", "fraud_prediction_log_pending_rows",
}  # fmt: skip


def test_a_real_prometheus_scrapes_the_api_and_the_stream_worker(service, tmp_path):
    """After the hot swap above: Debian's Prometheus scrapes the API's /metrics and a stream
    worker's port, and holds every series the dashboards and alerts read."""
    import redis

    from settings.stream import StreamSettings
    from tests.support.network import free_port
    from tests.support.prometheus import query, running_prometheus, targets_up

    _, home, env, _ = service
    client = redis.Redis(port=REDIS_PORT, db=2, password=REDIS_PASSWORD)
    client.flushdb()
    stream = StreamSettings.from_environment().name
    transactions = _parity_transactions(60)
    for i, t in enumerate(transactions):
        t["transaction_id"] = f"M{i}"  # not logged on the stream path yet
    for t in transactions:
        client.xadd(stream, {"transaction": json.dumps(t)})
    client.xadd(stream, {"transaction": "{not json"})  # one dead letter
    for t in transactions[:20]:
        assert _call("/score", {"transaction": t})[0] == 200
    worker_port = free_port()
    worker_env = {**os.environ, **env, "MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow/mlflow.db",
                  "STREAM_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{REDIS_PORT}/2"}  # fmt: skip
    worker_output = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "serving.stream", "--metrics-port", str(worker_port),
         "--block-ms", "200", "--flush-s", "0.2"],
        env=worker_env, stdout=worker_output, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    jobs = {"api": f"127.0.0.1:{PORT}", "stream": f"127.0.0.1:{worker_port}"}
    try:
        with running_prometheus(tmp_path / "prometheus", jobs) as url:

            def names(job: str) -> set[str]:
                found = query(url, f'group by (__name__) ({{job="{job}"}})')
                return {series["metric"]["__name__"] for series in found}

            deadline = time.monotonic() + 90
            while not (names("api") >= API_SERIES and names("stream") >= STREAM_SERIES):
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
                assert time.monotonic() < deadline, (
                    f"missing after 90 s: api {sorted(API_SERIES - names('api'))}, stream "
                    f"{sorted(STREAM_SERIES - names('stream'))}; targets {targets_up(url)}"
                )
                time.sleep(1)
            stages = {
                job: {s["metric"]["stage"] for s in query(
                    url, f'group by (stage) (fraud_latency_seconds_bucket{{job="{job}"}})')}
                for job in jobs
            }  # fmt: skip
            assert stages == {"api": {"total", "queue", "lookup", "model"},
                              "stream": {"lookup", "model"}}  # fmt: skip
            dead = query(url, 'fraud_stream_dead_letters_total{job="stream"}')
            assert [float(d["value"][1]) for d in dead] == [1.0]
            swaps = query(url, 'sum(fraud_model_swaps_total{job="api"})')
            assert float(swaps[0]["value"][1]) >= 1  # each worker swapped once above
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
        worker_output.close()


def test_a_broken_canary_is_rolled_back_without_a_person(service, monkeypatch):
    """A new champion that calls every transaction a fraud, in a canary rollout at half the
    batches: the API serves it beside the previous version; the canary sensor finds its scores
    shifted and asks for a rollback, with the reason in the run's tags; rollout_job moves
    `champion` back; the API follows, and every answer is the previous version's again."""
    from mlflow import MlflowClient

    from jobs.rollout import rollout_job
    from ml.promotion import promote
    from ml.registry import MODEL_NAME, version_by_alias
    from ml.rollout import start_canary
    from resources.lakehouse import LakehouseResource
    from resources.mlflow import MlflowResource
    from resources.monitoring import MonitoringResource
    from sensors.canary import canary_sensor
    from tests.support.champions import register_model

    _, home, env, _ = service
    uri = f"sqlite:///{home}/mlflow/mlflow.db"
    for name, value in {**env, "MLFLOW_TRACKING_URI": uri}.items():
        monkeypatch.setenv(name, value)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri, uri)
    stable = str(version_by_alias("champion", client).version)
    broken = register_model(broken=True)
    promote(client, broken)
    start_canary(client, broken, 0.5, dt.datetime.now(dt.UTC))
    answered: list[str] = []

    def traffic(count: int) -> None:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for status, body in pool.map(
                lambda i: _call("/score", {"transaction": {**TXN, "transaction_id": f"K{i}"}}),
                range(len(answered), len(answered) + count),
            ):
                assert status == 200, body
                answered.append(body["model_version"])

    deadline = time.monotonic() + 120
    while answered.count(broken) < 150:  # the canary's share of batches, at least 150 rows
        assert time.monotonic() < deadline, f"the canary answered {answered.count(broken)}"
        traffic(50)
    assert set(answered) <= {stable, broken} and answered.count(stable) > 0
    resources = {
        "mlflow": MlflowResource(tracking_uri=uri, artifact_root=str(home / "mlflow/artifacts")),
        "lakehouse": LakehouseResource(root=str(home / "lakehouse"), landing=str(home / "landing")),
        "monitoring": MonitoringResource(reports_dir=str(home / "reports"), canary_min_minutes=0),
    }
    instance = dg.DagsterInstance.ephemeral()
    while not isinstance(
        request := canary_sensor(dg.build_sensor_context(instance=instance, resources=resources)),
        dg.RunRequest,
    ):  # the log commits every 0.3 s
        assert time.monotonic() < deadline, f"the sensor did not decide: {request}"
        time.sleep(0.5)
    assert request.tags["fraud/rollout"] == "rollback"
    assert "scores shifted: Kolmogorov-Smirnov" in request.tags["fraud/rollout_reason"]
    done = rollout_job.execute_in_process(
        run_config=request.run_config, instance=instance, tags=request.tags,
        resources={"mlflow": resources["mlflow"]},
    )  # fmt: skip
    assert done.success and str(version_by_alias("champion", client).version) == stable
    assert client.get_model_version(MODEL_NAME, broken).tags["rollout"] == "rolled_back"
    mlflow.set_tracking_uri(None)
    answered.clear()
    while answered[-100:].count(stable) < 100:  # the API follows `champion` back
        assert time.monotonic() < deadline + 60, "the API still answers with the canary"
        traffic(50)


def test_the_password_reaches_no_output_no_bento_and_no_mlflow_record(service):
    """Last in the module: the service has answered, been degraded, and its stream has run."""
    _, home, _, _ = service
    assert _call("/score", {"transaction": TXN})[0] == 200
    secret = REDIS_PASSWORD.encode()
    output = (home / "api.log").read_bytes()
    assert output, "the service wrote nothing to look through"
    assert secret not in output
    leaked = [p for p in (home / "bentoml").rglob("*") if p.is_file() and secret in p.read_bytes()]
    assert not leaked
    client = mlflow.MlflowClient(f"sqlite:///{home}/mlflow/mlflow.db")
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id]):
            assert REDIS_PASSWORD not in json.dumps([run.data.params, run.data.tags])
    versions = client.search_model_versions("name='fraud-detector'")
    assert versions and REDIS_PASSWORD not in json.dumps([dict(v.tags) for v in versions])
