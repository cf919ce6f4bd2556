"""The promotion gate: a worse challenger is never promoted, a better one is, aliases follow, and
manual approval waits for the approve job."""

import dagster as dg
import mlflow
import numpy as np
from mlflow import MlflowClient

from assets.registry import approve_champion_job, champion, evaluate_gate
from ml.packaging import log_model
from ml.train import TrainParams, train
from resources import build_resources
from resources.mlflow import MODEL_NAME
from tests.test_model import _rows
from tests.test_training_asset import _training_set


class _Gate:
    pr_auc_margin, recall_tolerance, latency_budget_ms, min_takeover_share = 0.01, 0.0, 100.0, 0.9


def test_the_gate_lists_every_reason_to_refuse():
    good = {"pr_auc": 0.50, "recall_at_1pct_fpr": 0.40}
    incumbent = {"pr_auc": 0.45, "recall_at_1pct_fpr": 0.40}
    assert evaluate_gate(good, incumbent, 20, 0.95, _Gate) == []
    assert evaluate_gate(good, incumbent, 20, float("nan"), _Gate) == []  # nothing to perturb
    better = {"pr_auc": 0.495, "recall_at_1pct_fpr": 0.41}
    reasons = evaluate_gate(good, better, 150, 0.6, _Gate)
    assert [r.split()[0] for r in reasons] == ["PR-AUC", "recall", "1,000-row", "takeover"]


def _register(shuffle_labels: bool) -> str:
    """A challenger trained on the real labels, or on shuffled ones (a worse model)."""
    rows = _rows(1500)
    if shuffle_labels:
        rows["label"] = np.random.default_rng(0).permutation(rows["label"].to_numpy())
    trained = train(rows, _rows(500, seed=1), TrainParams(epochs=3, batch_size=256))
    with mlflow.start_run(experiment_id=build_resources()["mlflow"].activate()):
        info = log_model(trained, rows.drop(columns="label"))
    version = mlflow.register_model(info.model_uri, MODEL_NAME).version
    MlflowClient().set_registered_model_alias(MODEL_NAME, "challenger", version)
    return version


def _gate(instance, **config):
    result = dg.materialize(
        [champion],
        resources=build_resources(),
        instance=instance,
        run_config={"ops": {"registry__champion": {"config": config}}},
        raise_on_error=False,  # a failed gate fails the step: it is a blocking check
    )
    [check] = result.get_asset_check_evaluations()
    return check


def _alias(name: str) -> str:
    return MlflowClient().get_model_version_by_alias(MODEL_NAME, name).version


def test_worse_challengers_are_never_promoted_better_ones_are(fraud_home):
    _training_set(fraud_home)
    instance = dg.DagsterInstance.ephemeral()
    # First model: compared with the gradient-boosting baseline on the same test split.
    first = _register(shuffle_labels=False)
    check = _gate(instance, pr_auc_margin=-0.05, recall_tolerance=0.2)
    assert "baseline" in check.metadata["compared_with"].value
    assert check.passed, check.description
    assert _alias("champion") == first

    worse = _register(shuffle_labels=True)
    check = _gate(instance)
    assert not check.passed and "PR-AUC" in check.description
    assert (_alias("champion"), _alias("challenger")) == (first, worse)

    equal = _register(shuffle_labels=False)  # same data and seed: ties the champion
    assert _gate(instance).passed
    assert (_alias("champion"), _alias("previous")) == (equal, first)


def test_manual_approval_promotes_only_through_the_approve_job(fraud_home):
    _training_set(fraud_home)
    instance = dg.DagsterInstance.ephemeral()
    first = _register(shuffle_labels=False)
    assert _gate(instance, pr_auc_margin=-0.05, recall_tolerance=0.2, approval="manual").passed
    client = MlflowClient()
    assert not client.get_registered_model(MODEL_NAME).aliases.get("champion")
    result = approve_champion_job.execute_in_process(resources=build_resources(), instance=instance)
    assert result.success and _alias("champion") == first

    _register(shuffle_labels=True)
    assert not _gate(instance, approval="manual").passed
    refused = approve_champion_job.execute_in_process(
        resources=build_resources(), instance=instance, raise_on_error=False
    )
    assert not refused.success and _alias("champion") == first
