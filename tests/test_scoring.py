"""The scoring code path of every serving route: request validation, USD as silver computes it,
features through a circuit breaker, decisions and reason codes."""

import datetime as dt
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ml.packaging import log_model
from ml.preprocessing import row_count
from ml.train import TrainParams, train
from serving.scoring import CircuitBreaker, Scorer, Thresholds, Unguarded, reason_codes
from serving.transaction import SCORING_COLUMNS, Transaction, usd
from tests.support.rows import synthetic_rows

BODY = {
    "transaction_id": "T1",
    "event_timestamp": "2026-11-23T10:00:00Z",
    "customer_id": "C1",
    "card_id": "K1",
    "merchant_id": "M1",
    "merchant_category": "Grocery",
    "merchant_country": "us",
    "device_id": "D1",
    "channel": "online",
    "amount": "12.34",
    "currency": "EUR",
}


@pytest.mark.unit
def test_a_transaction_is_validated_and_becomes_a_scoring_row():
    row = Transaction(**BODY).scoring_row()
    assert list(row) == SCORING_COLUMNS  # what batch scoring reads of silver
    assert row["merchant_category"] == "grocery" and row["merchant_country"] == "US"
    assert row["amount_usd"] == usd(12.34, "EUR") == 13.41
    assert row["event_timestamp"] == dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)
    assert Transaction(**{**BODY, "device_id": None}).scoring_row()["device_id"] is None


@pytest.mark.unit
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "-1"}, "amount"),
        ({"currency": "XYZ"}, "currency"),
        ({"event_timestamp": "2026-11-23T10:00:00"}, "event_timestamp"),  # no time zone
        ({"merchant_country": "USA"}, "merchant_country"),
        ({"customer_id": ""}, "customer_id"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_a_bad_transaction_is_refused_naming_the_field(change, field):
    with pytest.raises(ValidationError) as refused:
        Transaction(**{**BODY, **change})
    assert field in str(refused.value)


@pytest.mark.integration
@pytest.mark.spark
@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False),
            st.sampled_from(["USD", "EUR", "GBP", "CAD", "BRL", "NGN", "RUB", "THB"]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_usd_amounts_equal_silvers_spark_rounding(spark, amounts):
    from pyspark.sql import functions as F

    from settings.currencies import USD_PER_UNIT

    rate = F.create_map(*[x for c, r in USD_PER_UNIT.items() for x in (F.lit(c), F.lit(r))])
    frame = spark.createDataFrame([(str(a), c) for a, c in amounts], "amount string, cur string")
    money = F.col("amount").try_cast("decimal(14,2)").cast("double")
    spark_usd = [r[0] for r in frame.select(F.round(money * rate[F.col("cur")], 2)).collect()]
    assert [usd(float(a), c) for a, c in amounts] == spark_usd


@pytest.mark.unit
def test_thresholds_decide_and_refuse_an_impossible_order():
    decisions = Thresholds(review=0.5, decline=0.9).decide(np.array([0.1, 0.5, 0.89, 0.9, 1.0]))
    assert decisions.tolist() == ["approve", "review", "review", "decline", "decline"]
    with pytest.raises(ValueError, match="review <= decline"):
        Thresholds(review=0.9, decline=0.5)


@pytest.mark.unit
def test_the_breaker_opens_after_repeated_failures_and_closes_after_a_success():
    breaker = CircuitBreaker(failures=2, timeout_ms=1000, cooldown_s=0.2)
    calls = []

    def failing():
        calls.append(1)
        raise ConnectionError("store down")

    assert breaker.call(failing) is None and breaker.call(failing) is None
    assert breaker.open
    assert breaker.call(failing) is None and len(calls) == 2  # open: not even tried
    time.sleep(0.25)
    assert breaker.call(lambda: {"ok": True}) == {"ok": True}  # half-open trial succeeds
    assert not breaker.open


@pytest.mark.unit
def test_a_lookup_slower_than_the_timeout_counts_as_a_failure_and_returns_at_once():
    breaker = CircuitBreaker(failures=1, timeout_ms=50, cooldown_s=60)
    started = time.monotonic()
    assert breaker.call(lambda: time.sleep(1) or {"late": True}) is None
    assert time.monotonic() - started < 0.5 and breaker.open


class _Features:
    """OnlineFeatures stand-in for the store's side (its real readers are tested elsewhere)."""

    def __init__(self, fail: bool = False, empty: bool = False, strangers: bool = False):
        self.fail, self.empty, self.strangers, self.calls = fail, empty, strangers, 0

    def holds_any(self):
        return not self.empty

    def lookup(self, rows, as_of=None):
        self.calls += 1
        if self.fail:
            raise ConnectionError("redis down")
        n = len(rows) if isinstance(rows, list) else row_count(rows)  # dicts, or columns
        if self.empty or self.strangers:  # answers, and knows none of these customers
            return self.unknown(n)
        return self.unknown(n) | {
            "customer_daily__missing": np.zeros(n, dtype=bool),
            "customer_daily__txn_count_30d": np.full(n, 20.0),
            "customer_daily__amount_avg_30d": np.full(n, 10.0),
        }

    def unknown(self, n):  # typed arrays, as the real one returns
        return {
            "customer_daily__txn_count_30d": np.zeros(n),  # a float, as in synthetic_rows
            "customer_daily__amount_avg_30d": np.zeros(n),
            "customer_daily__missing": np.ones(n, dtype=bool),
            "customer_device__missing": np.ones(n, dtype=bool),
        }


@pytest.fixture(scope="module")
def champion_model(tmp_path_factory):
    """A small model logged and loaded back as the registry serves it."""
    home = tmp_path_factory.mktemp("scoring")
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    experiment = mlflow.create_experiment("scoring", artifact_location=str(home / "artifacts"))
    trained = train(
        synthetic_rows(1500), synthetic_rows(500, seed=1), TrainParams(epochs=2, batch_size=256)
    )
    with mlflow.start_run(experiment_id=experiment):
        info = log_model(trained, synthetic_rows(10, seed=3).drop(columns="label"))
    yield mlflow.pyfunc.load_model(info.model_uri)
    mlflow.set_tracking_uri(None)


def _scoring_rows(n: int) -> list[dict]:
    rows = synthetic_rows(n, seed=4).drop(columns="label").to_dict("records")
    return [{**r, "customer_id": f"C{i}", "device_id": "D1"} for i, r in enumerate(rows)]


@pytest.mark.integration
def test_scores_decisions_and_reasons_come_from_the_features_and_the_model(champion_model):
    scorer = Scorer(champion_model, "7", _Features(), Thresholds(review=0.3, decline=0.8))
    rows = _scoring_rows(50)
    scored = scorer.score(rows)
    assert not scored.degraded and scored.model_version == "7"
    inputs = pd.DataFrame(scored.frame)[scorer.inputs]
    expected = champion_model.predict(inputs)["fraud_probability"]
    assert np.allclose(scored.scores, expected)
    assert (scored.decisions == Thresholds(0.3, 0.8).decide(scored.scores)).all()
    above = [r["amount_usd"] > 30 for r in rows]  # 3x the customer's average of 10
    reasons = scored.reasons.to_pylist()
    assert [("amount_above_usual" in r) for r in reasons] == above
    assert all("new_device" in r and "unknown_customer" not in r for r in reasons)


@pytest.mark.integration
def test_flagged_transactions_carry_the_models_own_reasons_and_approvals_the_rules(
    champion_model,
):
    from ml.attribution import Explainer

    scorer = Scorer(champion_model, "7", _Features(), Thresholds(review=0.3, decline=0.8),
                    explain=True)  # fmt: skip
    scored = scorer.score(_scoring_rows(200))
    flagged = scored.decisions != "approve"
    assert 0 < flagged.sum() < len(flagged)
    frame = {k: v[flagged] for k, v in scored.frame.items()}
    expected = Explainer(champion_model.get_raw_model()).top_reasons(frame)
    reasons = scored.reasons.to_pylist()
    assert [r for r, f in zip(reasons, flagged, strict=True) if f] == expected
    rules = reason_codes(scored.frame).to_pylist()
    assert [r for r, f in zip(reasons, flagged, strict=True) if not f] == [
        r for r, f in zip(rules, flagged, strict=True) if not f
    ]
    scorer._explainer.top_reasons = lambda frame: 1 / 0  # an explanation that fails
    assert scorer.score(_scoring_rows(200)).reasons.to_pylist() == rules


@pytest.mark.integration
def test_a_failing_feature_store_degrades_the_answer_not_the_request(champion_model):
    features = _Features(fail=True)
    scorer = Scorer(champion_model, "7", features, breaker=CircuitBreaker(failures=2))
    first = scorer.score(_scoring_rows(5))
    assert first.degraded and np.isfinite(first.scores).all()
    # defaults, flagged with the cause, not as unknown customers
    assert first.reasons.to_pylist() == [["feature_store_unavailable"]] * 5
    scorer.score(_scoring_rows(5))
    scorer.score(_scoring_rows(5))
    assert features.calls == 2  # the breaker opened: the store is left alone


@pytest.mark.integration
def test_an_empty_store_is_told_apart_from_an_unknown_customer(champion_model):
    empty = Scorer(champion_model, "7", _Features(empty=True)).score(_scoring_rows(4))
    assert empty.degraded and empty.reasons.to_pylist() == [["feature_store_empty"]] * 4
    # No one waits on a batch run: it stops, with the cause, rather than log degraded rows.
    with pytest.raises(LookupError, match="materialize features/online_store"):
        Scorer(champion_model, "7", _Features(empty=True), breaker=Unguarded()).score(
            _scoring_rows(4)
        )
    # A store that holds others: these customers are the unknown ones, and the answer is whole.
    strangers = Scorer(champion_model, "7", _Features(strangers=True)).score(_scoring_rows(4))
    assert not strangers.degraded
    assert all("unknown_customer" in r for r in strangers.reasons.to_pylist())


@pytest.mark.integration
def test_the_champion_copied_into_bentoml_scores_as_the_registry_does(
    fraud_home, monkeypatch, tmp_path
):
    import bentoml
    from mlflow import MlflowClient

    from resources import build_resources
    from resources.mlflow import MODEL_NAME
    from serving.champion import export_champion, load_stored

    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    build_resources()["mlflow"].activate()
    trained = train(
        synthetic_rows(1500), synthetic_rows(500, seed=1), TrainParams(epochs=1, batch_size=256)
    )
    with mlflow.start_run():
        info = log_model(trained, synthetic_rows(10, seed=3).drop(columns="label"))
    version = mlflow.register_model(info.model_uri, MODEL_NAME).version
    MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", version)

    tag, created = export_champion()
    assert (tag, created) == (f"fraud-detector:v{version}", True)
    assert export_champion() == (tag, False)  # idempotent
    stored = bentoml.models.get(tag)
    assert str(tmp_path) in stored.path  # BENTOML_HOME
    model, stored_version = load_stored(stored.path)
    rows = synthetic_rows(20, seed=5).drop(columns="label")
    assert stored_version == str(version)
    assert np.allclose(model.predict(rows)["fraud_probability"], trained.score(rows), atol=1e-6)


@pytest.mark.unit
def test_the_log_writer_commits_in_the_background_and_keeps_rows_a_failed_write_missed(
    tmp_path, monkeypatch
):
    from lakehouse import delta
    from lakehouse.delta import ALL_DAYS, read_days
    from serving.prediction_log import PredictionLogWriter
    from tests.support.rows import prediction_log_rows as rows

    uri = str(tmp_path / "prediction_log")
    real_append, failures = delta.append_rows, [1]

    def flaky_append(*args, **kwargs):  # the first commit fails (say, the store blinked)
        if failures:
            failures.pop()
            raise OSError("store unavailable")
        return real_append(*args, **kwargs)

    monkeypatch.setattr(delta, "append_rows", flaky_append)
    committed = []
    writer = PredictionLogWriter(uri, flush_s=0.1)
    writer.add(rows("a", "b"), on_written=lambda: committed.append("a, b"))
    time.sleep(0.05)
    assert committed == []  # not before its commit
    time.sleep(0.3)  # one failed flush, then a successful one
    assert committed == ["a, b"]
    writer.add(rows("c"), on_written=lambda: committed.append("c"))
    writer.close()
    written = read_days(uri, *ALL_DAYS).column("transaction_id").to_pylist()
    assert sorted(written) == ["a", "b", "c"] and committed == ["a, b", "c"]


@pytest.mark.integration
def test_a_batch_scorer_unguarded_raises_the_stores_failure_instead_of_degrading(champion_model):
    scorer = Scorer(champion_model, "7", _Features(fail=True), breaker=Unguarded())
    with pytest.raises(ConnectionError, match="redis down"):
        scorer.score(_scoring_rows(2))
    assert (
        not Scorer(champion_model, "7", _Features(), breaker=Unguarded())
        .score(_scoring_rows(2))
        .degraded
    )


def _logged_rows(n: int, prefix: str) -> list[dict]:
    stamp = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
    return [
        {**row, "transaction_id": f"{prefix}{i}", "event_timestamp": stamp}
        for i, row in enumerate(_scoring_rows(n))
    ]


@pytest.mark.integration
def test_scored_batches_logged_together_give_the_rows_each_would_alone(champion_model, tmp_path):
    from lakehouse.delta import ALL_DAYS, read_days
    from serving.prediction_log import PredictionLogWriter, prediction_rows

    healthy = Scorer(champion_model, "7", _Features())
    degraded = Scorer(champion_model, "8", _Features(fail=True))
    at = [dt.datetime(2026, 11, 23, 13, minute, tzinfo=dt.UTC) for minute in (1, 2, 3)]
    batches = [
        (healthy.score(_logged_rows(3, "a")), at[0]),
        (degraded.score(_logged_rows(1, "b")), at[1]),
        (healthy.score(_logged_rows(2, "c")), at[2]),
    ]
    writer = PredictionLogWriter(str(tmp_path / "log"), flush_s=60)
    for scored, scored_at in batches:
        writer.add_scored(scored, healthy.inputs, "online", scored_at)
    writer.close()  # one commit: the three batches built at once
    logged = read_days(str(tmp_path / "log"), *ALL_DAYS).sort_by("transaction_id").to_pylist()
    alone = [prediction_rows(s, healthy.inputs, "online", when) for s, when in batches]
    assert logged == [row for table in alone for row in table.to_pylist()]
    assert [r["degraded"] for r in logged] == [False] * 3 + [True] + [False] * 2
    assert [r["model_version"] for r in logged] == ["7"] * 3 + ["8"] + ["7"] * 2


_ids = st.one_of(st.none(), st.sampled_from(["C1", "C2", "é", ""]), st.text(max_size=8))


@pytest.mark.unit
@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "customer_id": _ids,
                "device_id": _ids,
                "amount_usd": st.one_of(st.none(), st.floats(allow_nan=False, width=64)),
                "count": st.integers(-(2**40), 2**40),
            }
        ),
        min_size=1,
        max_size=50,
    )
)
def test_an_arrow_table_becomes_the_columns_its_rows_would(rows):
    import pyarrow as pa

    from serving.scoring import _arrow_columns, _columns

    schema = pa.schema(
        [("customer_id", pa.string()), ("device_id", pa.string()),
         ("amount_usd", pa.float64()), ("count", pa.int64())]
    )  # fmt: skip
    got = _arrow_columns(pa.Table.from_pylist(rows, schema))
    want = _columns(rows)
    for name in ("customer_id", "device_id"):
        assert got[name].dtype == object and got[name].tolist() == want[name].tolist()
    assert got["count"].dtype == np.float64
    assert np.array_equal(got["count"], np.array([r["count"] for r in rows], dtype=np.float64))
    assert np.array_equal(got["amount_usd"], want["amount_usd"].astype(np.float64), equal_nan=True)


@pytest.mark.integration
def test_degraded_answers_stay_out_of_the_monitored_window(champion_model, tmp_path):
    """Scores on defaults (store down or empty) would read as drift and start a retrain."""
    from monitoring.windows import logged
    from resources.lakehouse import LakehouseResource
    from serving.prediction_log import PredictionLogWriter

    lakehouse = LakehouseResource(root=str(tmp_path), landing=str(tmp_path / "landing"))
    writer = PredictionLogWriter(lakehouse.uri("monitoring", "prediction_log"), flush_s=60)
    at = dt.datetime(2026, 11, 23, 13, tzinfo=dt.UTC)
    for features, prefix in ((_Features(), "ok"), (_Features(fail=True), "down"),
                             (_Features(empty=True), "empty")):  # fmt: skip
        scorer = Scorer(champion_model, "7", features)
        writer.add_scored(scorer.score(_logged_rows(3, prefix)), scorer.inputs, "online", at)
    writer.close()
    window = logged(lakehouse, at.date(), "7")
    assert sorted(window["transaction_id"].to_pylist()) == ["ok0", "ok1", "ok2"]
