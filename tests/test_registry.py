"""The promotion gate: a paired bootstrap on the test split decides, a worse challenger is never
promoted, a better one is, too few frauds or a model that does not load keep the champion, and
manual approval waits for the approve job."""

import shutil
from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from mlflow import MlflowClient

from assets import keys
from assets.registry import challenger_of_run, champion
from jobs.approval import approve_champion_job
from lakehouse.delta import overwrite_days
from ml.packaging import log_model
from ml.promotion import serving_reasons
from ml.rollout import in_rollout
from ml.train import TrainParams, train
from resources import build_resources
from resources.mlflow import MODEL_NAME
from tests.support.rows import TRAINING_SET_DAY, synthetic_rows

# The first model against the gradient-boosting baseline, which learns synthetic_rows' rule
# almost exactly; the network comes within the default tolerances here, but only just.
FIRST = {"pr_auc_tolerance": 0.05, "recall_tolerance": 0.1}


def _training_set(home: Path, test_rows: int = 2500) -> pd.DataFrame:
    """Train, validation and out-of-time test splits, four test rows per card; the test split."""
    test = synthetic_rows(test_rows, seed=2).assign(
        card_id=[f"K{i // 4:05d}" for i in range(test_rows)]
    )
    parts = [
        synthetic_rows(1500).assign(split="train"),
        synthetic_rows(500, seed=1).assign(split="validation"),
        test.assign(split="test"),
    ]
    rows = pd.concat(parts, ignore_index=True).assign(day=TRAINING_SET_DAY)
    rows["card_id"] = rows["card_id"].fillna("K-train")
    table = pa.Table.from_pandas(rows, preserve_index=False)
    overwrite_days(
        str(home / "lakehouse/features/training_set"), table, TRAINING_SET_DAY, TRAINING_SET_DAY
    )
    return test


def _register(shuffle_labels: bool = False, alias: str = "challenger") -> str:
    """A model trained on the real labels, or on shuffled ones (a worse model), as `alias`."""
    rows = synthetic_rows(1500)
    if shuffle_labels:
        rows["label"] = np.random.default_rng(0).permutation(rows["label"].to_numpy())
    trained = train(rows, synthetic_rows(500, seed=1), TrainParams(epochs=8, batch_size=256))
    with mlflow.start_run(experiment_id=build_resources()["mlflow"].activate()):
        info = log_model(trained, rows.drop(columns="label"))
    version = mlflow.register_model(info.model_uri, MODEL_NAME).version
    MlflowClient().set_registered_model_alias(MODEL_NAME, alias, version)
    return version


def _break(version: str) -> None:
    """Delete a registered version's model files: it can no longer be loaded."""
    client = MlflowClient()
    source = client.get_model_version(MODEL_NAME, version).source
    shutil.rmtree(mlflow.artifacts.download_artifacts(source).removesuffix("/"))


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


def _meta(check) -> dict:
    return {key: value.value for key, value in check.metadata.items()}


class _Limits:
    latency_budget_ms, min_takeover_share = 100.0, 0.9


@pytest.mark.unit
def test_slow_scoring_and_misjudged_takeovers_are_reasons_too():
    assert serving_reasons(20, 0.95, _Limits) == []
    assert serving_reasons(20, float("nan"), _Limits) == []  # nothing to perturb
    reasons = serving_reasons(150, 0.6, _Limits)
    assert [r.split()[0] for r in reasons] == ["1,000-row", "takeover"]


@pytest.mark.integration
def test_worse_challengers_are_never_promoted_better_ones_are(fraud_home):
    test = _training_set(fraud_home)
    instance = dg.DagsterInstance.ephemeral()
    # First model: compared with the gradient-boosting baseline on the same test split.
    first = _register()
    check = _gate(instance, **FIRST)
    meta = _meta(check)
    assert "baseline" in meta["compared_with"] and check.passed, check.description
    assert _alias("champion") == first
    assert (meta["frauds"], meta["rows"]) == (int(test["label"].sum()), len(test))
    assert meta["pr_auc_low"] <= meta["pr_auc_difference"] <= meta["pr_auc_high"]
    assert "| ROC AUC (shown, not judged) |" in meta["comparison"]
    assert "| Card Precision@100 (shown, not judged) |" in meta["comparison"]
    assert "| amount_band |" in meta["segments"] and meta["segments_worse"] == []
    assert "| PR-AUC |" in meta["comparison"] and meta["status"] in (
        "better",
        "not worse",
        "not shown worse",
    )

    worse = _register(shuffle_labels=True)
    check = _gate(instance)
    meta = _meta(check)
    assert not check.passed and meta["status"] == "worse"
    assert "PR-AUC" in check.description and f"champion v{first}" in check.description
    assert meta["pr_auc_high"] < 0 and meta["compared_with"] == f"champion v{first}"
    assert (_alias("champion"), _alias("challenger")) == (first, worse)
    # The gate's figures are on the challenger's MLflow run too.
    run = mlflow.get_run(MlflowClient().get_model_version(MODEL_NAME, worse).run_id)
    assert run.data.tags["gate_status"] == "worse"
    assert run.data.metrics["gate_pr_auc_delta_high"] == meta["pr_auc_high"]
    assert run.data.metrics["gate_frauds"] == meta["frauds"]
    for figure in ("delta", "delta_low", "delta_high"):
        assert f"gate_recall_at_1pct_fpr_{figure}" in run.data.metrics

    equal = _register()  # same data and seed: the champion's very scores
    check = _gate(instance)
    assert check.passed and _meta(check)["status"] == "not worse", check.description
    assert _meta(check)["pr_auc_difference"] == 0
    assert (_alias("champion"), _alias("previous")) == (equal, first)


@pytest.mark.integration
def test_a_better_challenger_is_promoted_as_better(fraud_home):
    _training_set(fraud_home)
    weak = _register(shuffle_labels=True, alias="champion")
    better = _register()
    check = _gate(instance := dg.DagsterInstance.ephemeral())
    assert check.passed and _meta(check)["status"] == "better", check.description
    assert f"v{better} is better than champion v{weak}" in check.description
    assert (_alias("champion"), _alias("previous")) == (better, weak)
    assert _gate(instance).passed  # gated again, it is its own champion: the baseline decides


@pytest.mark.integration
def test_too_few_frauds_keep_the_champion_and_say_how_many(fraud_home):
    test = _training_set(fraud_home, test_rows=300)
    frauds = int(test["label"].sum())
    assert 0 < frauds < 30
    weak = _register(shuffle_labels=True, alias="champion")
    _register()
    check = _gate(dg.DagsterInstance.ephemeral())
    assert not check.passed and _meta(check)["status"] == "not enough evidence"
    assert f"{frauds} frauds in the comparison window < 30 needed" in check.description
    assert _alias("champion") == weak


@pytest.mark.integration
def test_a_champion_that_does_not_load_fails_the_gate_without_the_baseline(fraud_home, monkeypatch):
    _training_set(fraud_home)
    broken = _register(alias="champion")
    _break(broken)

    def baseline(*_):
        raise AssertionError("a broken champion must not be replaced by the baseline")

    monkeypatch.setattr("ml.baseline.baseline_scores", baseline)
    _register()
    check = _gate(dg.DagsterInstance.ephemeral(), **FIRST)
    assert not check.passed
    assert check.description.startswith(f"could not load champion v{broken}: ")
    assert _meta(check)["compared_with"] == f"champion v{broken}"
    assert _alias("champion") == broken


@pytest.mark.integration
def test_a_challenger_that_does_not_load_fails_the_gate_and_is_not_promoted(fraud_home):
    _training_set(fraud_home)
    first = _register(alias="champion")
    broken = _register()
    _break(broken)
    check = _gate(dg.DagsterInstance.ephemeral(), **FIRST)
    assert not check.passed
    assert check.description.startswith(f"could not load challenger v{broken}: ")
    assert _alias("champion") == first
    assert MlflowClient().get_model_version(MODEL_NAME, broken).tags["gate"] == "failed"


@pytest.mark.integration
def test_manual_approval_promotes_only_through_the_approve_job(fraud_home):
    _training_set(fraud_home)
    instance = dg.DagsterInstance.ephemeral()
    first = _register()
    assert _gate(instance, **FIRST, approval="manual").passed
    client = MlflowClient()
    assert not client.get_registered_model(MODEL_NAME).aliases.get("champion")
    result = approve_champion_job.execute_in_process(resources=build_resources(), instance=instance)
    assert result.success and _alias("champion") == first
    [approved] = [
        e.event_specific_data.materialization
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    ]
    gate_runs = {r.run_id for r in instance.get_runs() if r.job_name != "approve_champion_job"}
    assert approved.metadata["gate_run_id"].value in gate_runs  # Dagster's record of the gate

    worse = _register(shuffle_labels=True)
    assert not _gate(instance, approval="manual").passed
    refused = approve_champion_job.execute_in_process(
        resources=build_resources(), instance=instance, raise_on_error=False
    )
    assert not refused.success and _alias("champion") == first
    # A tag anyone with registry access can set is not a gate: still refused.
    client.set_model_version_tag(MODEL_NAME, worse, "gate", "passed")
    forged = approve_champion_job.execute_in_process(
        resources=build_resources(), instance=instance, raise_on_error=False
    )
    assert not forged.success and _alias("champion") == first
    # Nor is a version Dagster never gated.
    ungated = _register(alias="challenger")
    client.set_model_version_tag(MODEL_NAME, ungated, "gate", "passed")
    assert not approve_champion_job.execute_in_process(
        resources=build_resources(), instance=instance, raise_on_error=False
    ).success
    assert _alias("champion") == first


@pytest.mark.integration
def test_an_approved_champion_first_decides_its_canary_share_like_a_promoted_one(fraud_home):
    _training_set(fraud_home)
    instance = dg.DagsterInstance.ephemeral()
    first = _register(alias="champion")
    second = _register()
    assert _gate(instance, **FIRST, approval="manual").passed
    assert _alias("champion") == first  # the gate alone promotes nothing in manual mode
    result = approve_champion_job.execute_in_process(
        resources=build_resources(),
        instance=instance,
        run_config={"ops": {"approve_champion": {"config": {"canary_share": 0.2}}}},
    )
    assert result.success
    assert (_alias("champion"), _alias("previous")) == (second, first)
    share, _ = in_rollout(MlflowClient().get_model_version(MODEL_NAME, second))
    assert share == 0.2
    [approved] = [
        e.event_specific_data.materialization
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    ]
    assert approved.metadata["rollout"].value.startswith("canary: 20% of batches")


@pytest.mark.integration
def test_a_challenger_worse_in_shadow_is_refused_though_it_passes_on_the_test_split(fraud_home):
    _training_set(fraud_home)
    instance = dg.DagsterInstance.ephemeral()
    first = _register(alias="champion")
    second = _register()  # the same training: not worse on the test split

    def paired(difference, low, high):
        return {"champion": 0.6, "challenger": 0.6 + difference, "difference": difference,
                "low": low, "high": high}  # fmt: skip

    worse_live = {"frauds": 150, "rows": 20_000, "pr_auc": paired(-0.3, -0.38, -0.22),
                  "recall_at_1pct_fpr": paired(-0.2, -0.3, -0.1)}  # fmt: skip
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            keys.SHADOW_COMPARISON,
            partition="2026-12-02",
            metadata={
                "shadow_version": second,
                "decided_version": first,
                "labelled_figures": dg.MetadataValue.json(worse_live),
            },
        )
    )
    check = _gate(instance)
    assert not check.passed
    assert _meta(check)["status"] == "worse in shadow"
    assert "in shadow on 2026-12-02: PR-AUC" in check.description
    assert "2026-12-02" in _meta(check)["shadow_evidence"]
    assert _alias("champion") == first
    assert MlflowClient().get_model_version(MODEL_NAME, second).tags["gate"] == "failed"


@pytest.mark.integration
def test_the_gate_judges_the_version_its_own_run_registered_not_the_alias(fraud_home):
    ours, theirs = _register(), _register()  # another training run moved the alias since

    @dg.asset(key=keys.CHALLENGER)
    def registered() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"version": int(ours)})

    instance = dg.DagsterInstance.ephemeral()
    run = dg.materialize([registered], instance=instance)
    client = MlflowClient()
    assert _alias("challenger") == theirs
    assert challenger_of_run(instance, run.run_id, client).version == ours

    # A run that registered nothing (the gate materialized on its own) takes the alias.
    @dg.asset(key=["registry", "unrelated"])
    def unrelated() -> None:
        return None

    other = dg.materialize([unrelated], instance=instance)
    assert challenger_of_run(instance, other.run_id, client).version == theirs
