"""Registry: the tuned model as challenger, and the promotion gate that moves the champion."""

import time

import dagster as dg
import pyarrow.compute as pc

from assets.metadata import latest_metadata
from lakehouse.delta import ALL_DAYS
from ml.registry import MODEL_NAME, version_by_alias
from resources.lakehouse import LakehouseResource
from resources.mlflow import MlflowResource

TUNED_MODEL = dg.AssetKey(["training", "tuned_model"])
CHALLENGER = dg.AssetKey(["registry", "challenger"])
CHAMPION = dg.AssetKey(["registry", "champion"])


@dg.asset(key=CHALLENGER, group_name="registry", deps=[TUNED_MODEL], kinds={"mlflow"})
def challenger(context: dg.AssetExecutionContext, mlflow: MlflowResource) -> dg.MaterializeResult:
    """The tuned model registered as a new version of fraud-detector, alias `challenger`."""
    import mlflow as mlflow_client
    from mlflow import MlflowClient

    tuned = latest_metadata(context.instance, TUNED_MODEL)
    if not tuned:
        raise dg.Failure(f"{TUNED_MODEL.to_user_string()} has not been materialized yet")
    mlflow.activate()
    version = mlflow_client.register_model(
        tuned["model_uri"],
        MODEL_NAME,
        tags={
            "mlflow_run_id": tuned["mlflow_run_id"],
            "training_set_delta_version": str(tuned["training_set_delta_version"]),
            "dagster_run_id": context.run.run_id,
        },
    )
    MlflowClient().set_registered_model_alias(MODEL_NAME, "challenger", version.version)
    return dg.MaterializeResult(
        metadata={
            "model": MODEL_NAME,
            "version": int(version.version),
            "alias": "challenger",
            "model_uri": f"models:/{MODEL_NAME}/{version.version}",
            "test_pr_auc": tuned["test_pr_auc"],
        }
    )


class PromotionConfig(dg.Config):
    """The gate: the challenger beats the champion (or, for the first model, a gradient-boosting
    baseline on the same features) on the same out-of-time test set, within a latency budget."""

    pr_auc_margin: float = 0.0  # the challenger's PR-AUC must exceed the champion's by this
    recall_tolerance: float = 0.0  # how far its recall at 1% FPR may fall below the champion's
    latency_budget_ms: float = 250.0  # scoring 1,000 rows on CPU
    # Share of the test set's usual purchases whose account-takeover variant (same customer,
    # five times the amount, a new device, a new foreign country) must score higher.
    min_takeover_share: float = 0.9
    approval: str = "auto"  # "manual": the gate is shown; `approve_champion_job` promotes


def scores_of(model, rows):
    """The pyfunc's fraud probabilities for training-set rows (only its input columns)."""
    from ml.registry import input_columns

    return model.predict(rows[input_columns(model)])["fraud_probability"].to_numpy()


def _latency_ms(model, rows) -> float:
    """Median wall time of scoring 1,000 rows, of five calls after one warm-up."""
    from ml.registry import input_columns

    batch = rows[input_columns(model)].sample(n=1000, replace=len(rows) < 1000, random_state=0)
    model.predict(batch)
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        model.predict(batch)
        timings.append((time.perf_counter() - started) * 1000)
    return sorted(timings)[2]


def evaluate_gate(
    challenger_m: dict, incumbent_m: dict, latency_ms: float, takeover_share: float, config
) -> list[str]:
    """The reasons the challenger may not be promoted; empty when it may. A NaN takeover share
    (no usual purchase to perturb in the test set) is not a reason."""
    reasons = []
    if challenger_m["pr_auc"] < incumbent_m["pr_auc"] + config.pr_auc_margin:
        reasons.append(
            f"PR-AUC {challenger_m['pr_auc']:.4f} < incumbent {incumbent_m['pr_auc']:.4f} "
            f"+ margin {config.pr_auc_margin}"
        )
    floor = incumbent_m["recall_at_1pct_fpr"] - config.recall_tolerance
    if challenger_m["recall_at_1pct_fpr"] < floor:
        reasons.append(
            f"recall at 1% FPR {challenger_m['recall_at_1pct_fpr']:.4f} < incumbent "
            f"{incumbent_m['recall_at_1pct_fpr']:.4f} - tolerance {config.recall_tolerance}"
        )
    if latency_ms > config.latency_budget_ms:
        reasons.append(
            f"1,000-row batch {latency_ms:.0f} ms > budget {config.latency_budget_ms} ms"
        )
    if takeover_share < config.min_takeover_share:
        reasons.append(
            f"takeover variants scored higher for {takeover_share:.1%} of usual purchases "
            f"< {config.min_takeover_share:.0%}"
        )
    return reasons


def promote(client, version: str) -> str | None:
    """Move `champion` to `version`; the former champion keeps `previous`. Returns it."""
    current = version_by_alias("champion")
    former = current.version if current else None
    if former is not None and former != version:
        client.set_registered_model_alias(MODEL_NAME, "previous", former)
    client.set_registered_model_alias(MODEL_NAME, "champion", version)
    return former


@dg.asset(
    key=CHAMPION,
    group_name="registry",
    deps=[CHALLENGER],
    kinds={"mlflow"},
    check_specs=[
        dg.AssetCheckSpec(
            "promotion_gate",
            asset=CHAMPION,
            blocking=True,
            description="Challenger beats the champion (or the baseline) on the out-of-time "
            "test set and scores 1,000 rows within the latency budget",
        )
    ],
)
def champion(
    context: dg.AssetExecutionContext,
    config: PromotionConfig,
    mlflow: MlflowResource,
    lakehouse: LakehouseResource,
):
    """Alias `champion` of fraud-detector, moved to the challenger when the gate passes."""
    import mlflow as mlflow_client
    from mlflow import MlflowClient

    from ml.baseline import baseline_scores
    from ml.behaviour import most_foreign_country, takeover_scores_higher
    from ml.metrics import fraud_metrics

    mlflow.activate()
    client = MlflowClient()
    candidate = client.get_model_version_by_alias(MODEL_NAME, "challenger")

    def split(name: str):
        only = pc.field("split") == name
        return lakehouse.read("features", "training_set", *ALL_DAYS, filter_expression=only)

    train, test = split("train").to_pandas(), split("test").to_pandas()
    model = mlflow_client.pyfunc.load_model(f"models:/{MODEL_NAME}@challenger")
    challenger_m = fraud_metrics(test["label"], scores_of(model, test))
    incumbent = version_by_alias("champion")
    if incumbent is not None and incumbent.version != candidate.version:
        incumbent_name = f"champion v{incumbent.version}"
        current = mlflow_client.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
        incumbent_m = fraud_metrics(test["label"], scores_of(current, test))
    else:
        incumbent_name = "HistGradientBoosting baseline"
        incumbent_m = fraud_metrics(test["label"], baseline_scores(train, test))
    latency = _latency_ms(model, test)
    takeover_share, takeover_checked = takeover_scores_higher(
        lambda rows: scores_of(model, rows), test, most_foreign_country(train)
    )
    reasons = evaluate_gate(challenger_m, incumbent_m, latency, takeover_share, config)
    passed = not reasons
    promoted = passed and config.approval == "auto"
    former = promote(client, candidate.version) if promoted else None
    client.set_model_version_tag(
        MODEL_NAME, candidate.version, "gate", "passed" if passed else "failed"
    )
    if passed and not promoted:
        context.log.info(f"v{candidate.version} passed the gate; launch approve_champion_job")
    champion_version = candidate.version if promoted else (incumbent.version if incumbent else None)
    yield dg.MaterializeResult(
        metadata={
            "champion_version": champion_version or "none",
            "challenger_version": int(candidate.version),
            "promoted": promoted,
            "previous_version": former or "none",
            "approval": config.approval,
            "compared_with": incumbent_name,
        }
    )
    yield dg.AssetCheckResult(
        check_name="promotion_gate",
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(reasons) or f"v{candidate.version} beats {incumbent_name}",
        metadata={
            "challenger_pr_auc": challenger_m["pr_auc"],
            "incumbent_pr_auc": incumbent_m["pr_auc"],
            "challenger_recall_at_1pct_fpr": challenger_m["recall_at_1pct_fpr"],
            "incumbent_recall_at_1pct_fpr": incumbent_m["recall_at_1pct_fpr"],
            "latency_ms_1000_rows": round(latency, 1),
            "takeover_scored_higher": round(takeover_share, 4),
            "usual_purchases_perturbed": takeover_checked,
            "compared_with": incumbent_name,
        },
    )


@dg.op
def approve_champion(context: dg.OpExecutionContext, mlflow: MlflowResource) -> str:
    """Promote the challenger that passed its gate (manual-approval mode)."""
    from mlflow import MlflowClient

    mlflow.activate()
    client = MlflowClient()
    candidate = client.get_model_version_by_alias(MODEL_NAME, "challenger")
    if candidate.tags.get("gate") != "passed":
        raise dg.Failure(
            f"challenger v{candidate.version} has gate={candidate.tags.get('gate', 'not run')}: "
            "only a challenger that passed registry/champion's gate can be approved"
        )
    former = promote(client, candidate.version)
    context.log_event(
        dg.AssetMaterialization(
            CHAMPION,
            metadata={
                "champion_version": int(candidate.version),
                "previous_version": former or "none",
                "promoted": True,
                "approval": "manual",
            },
        )
    )
    return str(candidate.version)


@dg.job(description="A person's approval: the gated challenger becomes champion.")
def approve_champion_job():
    approve_champion()
