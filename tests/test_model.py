"""ml/: preprocessing fitted on train only, the network, the training loop and fraud metrics."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.comparison import recall_at_fpr
from ml.metrics import fraud_metrics, precision_at_budget
from ml.preprocessing import UNKNOWN, Preprocessor
from ml.train import TrainParams, check_trainable, train
from tests.support.rows import synthetic_rows

pytestmark = pytest.mark.unit


def test_preprocessing_is_fitted_on_train_and_survives_a_json_round_trip():
    train_rows, other = synthetic_rows(500), synthetic_rows(50, seed=1)
    prep = Preprocessor.fit(train_rows)
    numeric, _ = prep.transform(train_rows)
    assert np.allclose(numeric.mean(axis=0), 0, atol=1e-5)  # standardized with train stats
    again = Preprocessor.from_dict(json.loads(json.dumps(prep.to_dict())))
    for got, want in zip(again.transform(other), prep.transform(other), strict=True):
        assert np.array_equal(got, want)
    assert prep.cardinalities == [4, 3, 3]  # vocabulary + the unknown bucket


def test_unseen_categories_and_missing_values_are_encoded_not_refused():
    prep = Preprocessor.fit(synthetic_rows(300))
    odd = synthetic_rows(3).assign(merchant_category=["casino", None, float("nan")])
    odd.loc[0, "amount_usd"] = float("nan")
    odd.loc[1, "amount_usd"] = float("inf")
    odd = odd.drop(columns=["customer_daily__txn_count_30d"])  # a feature the row lacks
    numeric, codes = prep.transform(odd)
    assert np.isfinite(numeric).all()
    assert (codes[:, 0] == UNKNOWN).all()
    median_row = prep.transform(synthetic_rows(1).assign(amount_usd=float("nan")))[0]
    median = (prep.medians[0] - prep.means[0]) / prep.stds[0]
    assert median_row[0, 0] == pytest.approx(median, abs=1e-6)  # the network's float32


def test_the_amount_also_enters_piecewise_over_the_train_quantiles():
    prep = Preprocessor.fit(synthetic_rows(400))
    edges = prep.bin_edges["amount_usd"]
    assert len(edges) > 3 and edges == sorted(set(edges))
    middle = (edges[2] + edges[3]) / 2
    amounts = [edges[0], middle, edges[-1] * 10, float("nan")]
    numeric, _ = prep.transform(synthetic_rows(4).assign(amount_usd=amounts))
    first = len(prep.numeric)  # the binned values follow the numeric inputs, amount first
    columns = slice(first, first + len(edges) - 1)
    raw = numeric[:, columns] * np.float32(prep.stds[columns]) + np.float32(prep.means[columns])
    bins = len(edges) - 1
    assert raw[0] == pytest.approx(np.zeros(bins), abs=1e-5)  # at the lowest edge
    assert raw[1] == pytest.approx([1, 1, 0.5] + [0] * (bins - 3), abs=1e-5)
    assert raw[2] == pytest.approx(np.ones(bins), abs=1e-5)  # beyond the train's largest
    assert raw[3] == pytest.approx(np.zeros(bins), abs=1e-5)  # missing


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none()),
        min_size=1,
        max_size=30,
    )
)
def test_any_amount_maps_to_a_finite_input(amounts):
    prep = Preprocessor.fit(synthetic_rows(300))
    rows = synthetic_rows(len(amounts)).assign(amount_usd=pd.Series(amounts, dtype="float64"))
    numeric, _ = prep.transform(rows)
    assert np.isfinite(numeric).all()


def test_the_network_overfits_one_batch():
    import torch

    from ml.model import FraudNet, ModelConfig

    torch.manual_seed(0)
    rows = synthetic_rows(64)
    prep = Preprocessor.fit(rows)
    numeric, codes = (torch.from_numpy(a) for a in prep.transform(rows))
    labels = torch.from_numpy(rows["label"].to_numpy(np.float32))
    net = FraudNet(ModelConfig(numeric.shape[1], tuple(prep.cardinalities), width=32, dropout=0))
    assert net(numeric, codes).shape == (64,)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(300):
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(numeric, codes), labels)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


def test_training_learns_the_pattern_and_keeps_its_best_epoch():
    model = train(
        synthetic_rows(3000), synthetic_rows(1000, seed=1), TrainParams(epochs=6, batch_size=256)
    )
    test = synthetic_rows(1000, seed=2)
    metrics = fraud_metrics(test["label"], model.score(test))
    assert metrics["pr_auc"] > 0.9
    best = max(h["pr_auc"] for h in model.history)
    valid = synthetic_rows(1000, seed=1)
    assert fraud_metrics(valid["label"], model.score(valid))["pr_auc"] == pytest.approx(best)


def test_a_split_too_small_or_with_one_class_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="at least 200"):
        check_trainable(pd.Series([0, 1] * 50), "train")
    with pytest.raises(ValueError, match="both classes"):
        check_trainable(pd.Series([0] * 500), "validation")
    with pytest.raises(ValueError, match="both classes"):
        train(synthetic_rows(500).assign(label=0), synthetic_rows(500), TrainParams(epochs=1))


def test_fraud_metrics_on_hand_built_scores():
    labels = np.array([0] * 98 + [1, 1])
    perfect = np.r_[np.linspace(0, 0.5, 98), [0.9, 0.95]]
    assert fraud_metrics(labels, perfect)["pr_auc"] == pytest.approx(1.0)
    assert recall_at_fpr(labels, perfect) == 1.0
    # one fraud hides below every legitimate score: half the frauds at any FPR < 100%
    shuffled = np.r_[np.linspace(0.1, 0.5, 98), [0.9, 0.0]]
    assert recall_at_fpr(labels, shuffled) == 0.5
    assert precision_at_budget(labels, shuffled, 0.02) == 0.5  # two alerts, one fraud
    assert fraud_metrics(labels, np.full(100, 0.02))["brier"] == pytest.approx(
        (98 * 0.02**2 + 2 * 0.98**2) / 100
    )
    with pytest.raises(ValueError, match="both classes"):
        fraud_metrics(np.zeros(10), np.zeros(10))


def test_the_amount_against_the_customers_average_is_an_input_computed_in_the_model():
    rows = synthetic_rows(300).assign(customer_daily__amount_avg_30d=np.linspace(0, 100, 300))
    prep = Preprocessor.fit(rows)
    column = prep.numeric.index("amount_to_customer_avg_30d")
    assert "amount_to_customer_max_30d" not in prep.numeric  # its input is absent
    usual = rows.iloc[[150]].assign(amount_usd=50.0)
    numeric, _ = prep.transform(pd.concat([usual, usual.assign(amount_usd=500.0)]))
    assert numeric[1, column] > numeric[0, column]
    never_spent = usual.assign(customer_daily__amount_avg_30d=0.0)  # no average: the median
    assert np.isfinite(prep.transform(never_spent)[0]).all()


def test_inputs_built_on_an_absent_field_leave_the_model():
    """A source without countries or devices: no input is built on them, the rest train."""
    from ml.baseline import Baseline

    rows = synthetic_rows(800, seed=4).assign(
        merchant_country=None,
        device_id=None,
        customer_device__txn_count_30d=0.0,
        customer_device__missing=True,
        customer_daily__distinct_devices_30d=0.0,
    )
    fitted = Preprocessor.fit(rows)
    assert fitted.absent_fields == ["device_id", "merchant_country"]
    assert fitted.categorical == ["merchant_category", "channel"]
    assert not [c for c in fitted.numeric if "device" in c]
    assert "customer_daily__txn_count_30d" in fitted.numeric
    numeric, categorical = fitted.transform(rows)
    assert numeric.shape == (800, fitted.width) and categorical.shape == (800, 2)
    baseline = Baseline.fit(rows.assign(weight=1.0))
    assert "merchant_country" not in baseline.columns and not [
        c for c in baseline.columns if "device" in c
    ]
    assert Preprocessor.from_dict(fitted.to_dict()).absent_fields == fitted.absent_fields
