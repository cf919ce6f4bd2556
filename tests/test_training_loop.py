"""The whole training loop on small simulated data: landing -> gold -> features -> training set ->
Ray Tune -> challenger -> gated champion, then the champion's behaviour."""

import datetime as dt
from types import SimpleNamespace

import dagster as dg
import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from assets.metadata import materialized
from assets.partitions import range_tags
from lakehouse.delta import ALL_DAYS, read_days
from ml.thresholds import thresholds_from_tags
from resources.mlflow import MODEL_NAME
from settings.env import prepare_process_environment
from simulator.landing import generate
from tests.support.lakehouse import check_results
from tests.support.training import TRAINING_CONFIG

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.dbt]
START, DAYS = dt.date(2026, 2, 1), 35
END = START + dt.timedelta(days=DAYS - 1)


@pytest.fixture(scope="module")
def loop(tmp_path_factory, spark_resource):
    """Five weeks of 700 customers through the daily job, then the training job."""
    from definitions import defs
    from resources import build_resources

    home = tmp_path_factory.mktemp("loop") / "fraud_home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAUD_HOME", str(home))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        prepare_process_environment()
        generate(home / "landing", days=DAYS, customers=700, seed=11, start=START)
        # The definitions' resources were built for the FRAUD_HOME of the process's import.
        resources = {**build_resources(), "spark": spark_resource}
        instance = dg.DagsterInstance.ephemeral()
        daily = defs.resolve_job_def("daily_job").execute_in_process(
            instance=instance,
            tags=range_tags(START, END),
            resources=resources,
            raise_on_error=False,
        )
        assert daily.success
        training = defs.resolve_job_def("training_job").execute_in_process(
            instance=instance,
            run_config={"ops": TRAINING_CONFIG},
            resources=resources,
            raise_on_error=False,
        )
        yield SimpleNamespace(
            home=home,
            training=training,
            tracking=mlflow.get_tracking_uri(),
            resources=resources,
            instance=instance,
        )


def test_the_train_job_runs_set_tuning_challenger_and_champion(loop):
    assert loop.training.success
    assert set(materialized(loop.training)) == {
        "features/training_set", "training/tuned_model", "registry/challenger",
        "registry/decision_thresholds", "registry/champion",
    }  # fmt: skip
    assert all(check_results(loop.training).values())
    mlflow.set_tracking_uri(loop.tracking)
    client = MlflowClient()
    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    assert champion.version == client.get_model_version_by_alias(MODEL_NAME, "challenger").version
    assert champion.tags["gate"] == "passed"
    # thresholds from costs, within the alert budget, on the version serving reads
    review, decline = thresholds_from_tags(champion.tags)
    assert 0 < review <= decline <= 1
    chosen = loop.training.asset_materializations_for_node("registry__decision_thresholds")
    figures = chosen[0].metadata
    assert figures["reviews_per_day"].value <= figures["reviews_per_day_budget"].value
    assert figures["cost_per_day"].value <= figures["cost_per_day_approving_all"].value


def test_a_takeover_scores_higher_than_the_same_customers_usual_purchase(loop):
    from ml.behaviour import most_foreign_country, takeover_scores_higher
    from ml.promotion import scores_of

    mlflow.set_tracking_uri(loop.tracking)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    rows = read_days(str(loop.home / "lakehouse/features/training_set"), *ALL_DAYS).to_pandas()
    share, checked = takeover_scores_higher(
        lambda frame: scores_of(model, frame),
        rows[rows["split"] == "test"],
        most_foreign_country(rows[rows["split"] == "train"]),
    )
    assert checked >= 100
    assert share >= 0.95, f"only {share:.1%} of {checked} takeover variants scored higher"


def test_the_reasons_of_a_takeover_name_its_device_country_or_amount(loop):
    """The champion's own attributions (what serving answers with) on the takeover probe: the
    usual purchases of the test split made into takeovers lead with what the takeover changed."""
    from ml.attribution import Explainer
    from ml.behaviour import most_foreign_country, takeover_variants, usual_purchases

    mlflow.set_tracking_uri(loop.tracking)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    rows = read_days(str(loop.home / "lakehouse/features/training_set"), *ALL_DAYS).to_pandas()
    foreign = most_foreign_country(rows[rows["split"] == "train"])
    usual = usual_purchases(rows[rows["split"] == "test"])
    probes = takeover_variants(usual[usual["merchant_country"] != foreign], foreign)
    reasons = Explainer(model.get_raw_model()).top_reasons(probes)
    first = pd.Series([found[0] if found else "none" for found in reasons])
    changed = first.isin(["new_device", "new_country", "amount_above_usual"])
    assert len(first) >= 100
    assert changed.mean() >= 0.95, first.value_counts().to_dict()


def test_a_closed_day_is_scored_on_the_features_it_was_trained_on(loop):
    """No training/serving skew: batch scores of a training day log, for every transaction, the
    same point-in-time features as the training set holds for it."""
    import numpy as np

    from definitions import defs

    mlflow.set_tracking_uri(loop.tracking)
    day = START + dt.timedelta(days=20)
    scored = defs.resolve_job_def("scoring_job").execute_in_process(
        instance=loop.instance, tags=range_tags(day, day), resources=loop.resources
    )
    assert materialized(scored)["scoring/batch_scores"]["features"] == "point_in_time"
    log = read_days(str(loop.home / "lakehouse/monitoring/prediction_log"), day, day).to_pandas()
    logged = log.set_index("transaction_id")["features"].apply(pd.Series)
    training = read_days(str(loop.home / "lakehouse/features/training_set"), day, day)
    training = training.to_pandas().set_index("transaction_id")
    assert len(logged) == len(training) > 500
    assert set(logged.index) == set(training.index)
    training = training.loc[logged.index]
    for column in logged.columns:
        got, want = logged[column], training[column]
        if got.dtype == object or want.dtype == object:
            assert (got.fillna("<null>") == want.fillna("<null>")).all(), column
        else:
            assert np.allclose(got.astype(float), want.astype(float), atol=1e-6), column
