"""The model's own reasons: integrated gradients over the network's inputs, grouped into business
reasons. A network that reads one input gives all of its logit to that input's reason; a
trained network's reasons add up to its logit's rise over the baseline (the method's
completeness); inputs map to the reasons a reviewer knows."""

import numpy as np
import pandas as pd
import pytest
import torch

from ml.attribution import Explainer, reason_of
from ml.model import FraudNet, ModelConfig
from ml.preprocessing import Preprocessor
from ml.train import TrainedModel, TrainParams, train
from tests.support.rows import synthetic_rows

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("column", "reason"), [
    ("customer_device__txn_count_30d", "new_device"), ("customer_device__missing", "new_device"),
    ("customer_daily__distinct_devices_30d", "new_device"),
    ("customer_country__active_days_30d", "new_country"), ("merchant_country", "new_country"),
    ("amount_usd", "amount_above_usual"), ("amount_to_customer_avg_30d", "amount_above_usual"),
    ("customer_daily__amount_avg_30d", "amount_above_usual"),
    ("card_velocity__txn_count_10m", "card_velocity"),
    ("customer_daily__fraud_reports_known_7d", "customer_fraud_reports"),
    ("merchant_daily__fraud_rate_30d", "merchant_fraud_rate"),
    ("merchant_fraud_reports__fraud_reports_decayed_1d", "merchant_fraud_rate"),
    ("customer_daily__missing", "unknown_customer"), ("channel", "channel"),
])  # fmt: skip
def test_each_input_has_the_reason_a_reviewer_knows(column, reason):
    assert reason_of(column) == reason


def _amount_only_model() -> TrainedModel:
    """A network whose logit is 3 x the standardized signed log of the amount, nothing else."""
    rows = synthetic_rows(500)
    preprocessor = Preprocessor.fit(rows.drop(columns=["label", "card_id"]))
    network = FraudNet(ModelConfig(preprocessor.width, tuple(preprocessor.cardinalities),
                                   width=4, depth=1, dropout=0.0))  # fmt: skip
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.zero_()
        first, last = network.mlp[0], network.mlp[-1]
        amount = preprocessor.numeric.index("amount_usd")
        first.weight[0, amount], last.weight[0, 0] = 1.0, 3.0
        first.bias[0] = 10.0  # stays in ReLU's linear part
        first.bias[1], last.weight[0, 1] = 1.0, 0.0
    network.eval()
    return TrainedModel(preprocessor, network)


def test_a_network_reading_only_the_amount_gives_it_the_whole_logit():
    explainer = Explainer(_amount_only_model())
    frame = synthetic_rows(20, seed=7).drop(columns=["label", "card_id"])
    shares = explainer.contributions(frame)
    amount = explainer.reasons.index("amount_above_usual")
    others = np.delete(shares, amount, axis=1)
    assert np.abs(others).max() < 1e-6
    numeric, _ = explainer.preprocessor.transform(frame)
    baseline, _ = explainer.preprocessor.transform(
        pd.DataFrame({c: [np.nan if c in explainer.preprocessor.numeric else None]
                      for c in explainer.preprocessor.input_columns})
    )  # fmt: skip
    column = explainer.preprocessor.numeric.index("amount_usd")
    rise = 3.0 * (numeric[:, column] - baseline[0, column])  # the logit is linear in it here
    assert shares[:, amount] == pytest.approx(rise, abs=1e-4)
    ranked = explainer.top_reasons(frame)
    expected = [["amount_above_usual"] if x > 0 else [] for x in rise]
    assert ranked == expected


def test_a_trained_networks_reasons_add_up_to_its_logits_rise_over_the_baseline():
    rows = synthetic_rows(2000)
    trained = train(rows, synthetic_rows(600, seed=1), TrainParams(epochs=2, batch_size=256))
    explainer = Explainer(trained, steps=32)
    frame = synthetic_rows(300, seed=9).drop(columns=["label", "card_id"])
    with torch.no_grad():
        logit = explainer._logit(*explainer._inputs(frame))
        baseline = explainer._logit(*explainer._baseline)
    rise = (logit - baseline).numpy()
    gap = np.abs(explainer.contributions(frame).sum(axis=1) - rise)
    assert (gap <= 0.02 + 0.02 * np.abs(rise)).all(), gap.max()
    # the synthetic frauds are large online electronics purchases: their reasons say so
    frauds = frame[(frame["merchant_category"] == "electronics") & (frame["channel"] == "online")
                   & (frame["amount_usd"] > 40)]  # fmt: skip
    top = [reasons[0] for reasons in explainer.top_reasons(frauds)]
    assert len(top) >= 3 and set(top) <= {"amount_above_usual", "merchant_category", "channel"}
