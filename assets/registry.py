"""Registry: the tuned model as challenger, and the promotion gate that moves the champion."""

import dataclasses

import dagster as dg
import pyarrow.compute as pc
from pydantic import Field

from assets import keys
from assets.metadata import latest_metadata
from lakehouse.delta import ALL_DAYS
from ml.promotion import (
    GatePolicy,
    Unloadable,
    comparison_table,
    evaluate,
    load_pair,
    log_to_run,
    roll_out,
    scores_of,
    shadow_reasons,
)
from ml.registry import MODEL_NAME, set_alias, version_by_alias
from ml.segments import segment_table
from ml.thresholds import CostModel
from resources.lakehouse import LakehouseResource
from resources.mlflow import MlflowResource
from settings.env import canary_share as default_canary_share

GATE_CHECK = "promotion_gate"
_COSTS = CostModel()


@dg.asset(key=keys.CHALLENGER, group_name="registry", deps=[keys.TUNED_MODEL], kinds={"mlflow"})
def challenger(context: dg.AssetExecutionContext, mlflow: MlflowResource) -> dg.MaterializeResult:
    """The tuned model registered as a new version of fraud-detector, alias `challenger`."""
    import mlflow as mlflow_client

    tuned = latest_metadata(context.instance, keys.TUNED_MODEL)
    if not tuned:
        raise dg.Failure(f"{keys.TUNED_MODEL.to_user_string()} has not been materialized yet")
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
    set_alias("challenger", version.version)
    return dg.MaterializeResult(
        metadata={
            "model": MODEL_NAME,
            "version": int(version.version),
            "alias": "challenger",
            "model_uri": f"models:/{MODEL_NAME}/{version.version}",
            "test_pr_auc": tuned["test_pr_auc"],
        }
    )


def challenger_of_run(instance: dg.DagsterInstance, run_id: str, client):
    """The version run `run_id`'s `registry/challenger` registered: another training run may
    have moved alias `challenger` since. The alias's holder only when the run registered none
    (the gate or the thresholds materialized on their own)."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    for record in reversed(records):
        materialization = record.event_log_entry.asset_materialization
        if materialization and materialization.asset_key == keys.CHALLENGER:
            version = str(materialization.metadata["version"].value)
            return client.get_model_version(MODEL_NAME, version)
    return client.get_model_version_by_alias(MODEL_NAME, "challenger")


class CostConfig(dg.Config):
    """The cost model the decision thresholds minimize (defaults: `ml.thresholds.CostModel`)."""

    review_cost: float = _COSTS.review_cost  # USD per transaction an analyst looks at
    false_decline_share: float = _COSTS.false_decline_share  # of a declined good sale
    reviews_per_day: float = _COSTS.reviews_per_day  # the alert budget


@dg.asset(
    key=keys.DECISION_THRESHOLDS,
    group_name="registry",
    deps=[keys.CHALLENGER, keys.TRAINING_SET],
    kinds={"mlflow"},
)
def decision_thresholds(
    context: dg.AssetExecutionContext,
    config: CostConfig,
    mlflow: MlflowResource,
    lakehouse: LakehouseResource,
) -> dg.MaterializeResult:
    """Review and decline thresholds of least expected cost on the validation split, as tags
    of the challenger's version (serving reads them)."""
    from mlflow import MlflowClient

    from ml.thresholds import CostModel, choose_thresholds

    mlflow.activate()
    client = MlflowClient()
    candidate = challenger_of_run(context.instance, context.run_id, client)
    model, _ = load_pair(candidate, None)
    rows = _split(lakehouse, "validation")
    days = max(1, rows["day"].nunique())
    costs = CostModel(config.review_cost, config.false_decline_share, config.reviews_per_day)
    choice = choose_thresholds(
        rows["label"], scores_of(model, rows), rows["amount_usd"], days, costs, rows["weight"]
    )
    for name, value in choice.tags().items():
        client.set_model_version_tag(MODEL_NAME, candidate.version, name, value)
    if candidate.run_id:
        client.log_dict(candidate.run_id, {**choice.as_dict(), **config.model_dump()},
                        "decision_thresholds.json")  # fmt: skip
    figures = {k: round(v, 4) for k, v in choice.as_dict().items()}
    return dg.MaterializeResult(
        metadata={
            "version": int(candidate.version),
            **figures,
            "validation_rows": len(rows),
            "validation_days": days,
            "review_cost": config.review_cost,
            "false_decline_share": config.false_decline_share,
            "reviews_per_day_budget": config.reviews_per_day,
        }
    )


_GATE = GatePolicy()


class RolloutConfig(dg.Config):
    """`canary_share` below 1: a promoted champion first decides that share of traffic, beside
    the previous one, until the canary sensor completes its rollout or rolls it back (default
    FRAUD_CANARY_SHARE, else 1: at once)."""

    canary_share: float = Field(default_canary_share(), gt=0, le=1)


class PromotionConfig(RolloutConfig):
    """The gate: on the same test rows (recent rows of held-out cards) the challenger is not
    worse than the champion (or, for the first model, a gradient-boosting baseline on the same
    features) with `confidence`, scores within a latency budget and scores account takeovers
    higher; `approval` says who promotes; `canary_share` as in `RolloutConfig`. The defaults
    and their reasons: `ml.promotion`."""

    pr_auc_tolerance: float = _GATE.pr_auc_tolerance
    recall_tolerance: float = _GATE.recall_tolerance  # recall at 1% FPR
    min_frauds: int = _GATE.min_frauds
    min_segment_frauds: int = _GATE.min_segment_frauds
    confidence: float = _GATE.confidence
    resamples: int = _GATE.resamples
    latency_budget_ms: float = _GATE.latency_budget_ms
    min_takeover_share: float = _GATE.min_takeover_share
    approval: str = "auto"  # "manual": the gate is shown; `approve_champion_job` promotes

    def policy(self) -> GatePolicy:
        return GatePolicy(**{f: getattr(self, f) for f in GatePolicy.__dataclass_fields__})


def _split(lakehouse: LakehouseResource, name: str):
    only = pc.field("split") == name
    return lakehouse.read("features", "training_set", *ALL_DAYS, filter_expression=only).to_pandas()


SHADOW_HISTORY = 90  # shadow comparisons looked through for the challenger's days


def _shadow_days(instance: dg.DagsterInstance, version: str, incumbent) -> list[tuple[str, dict]]:
    """(day, labelled figures) of each day `monitoring/shadow_comparison` measured challenger
    `version` in shadow beside the incumbent champion on matured labels, newest first."""
    if incumbent is None:
        return []
    records = instance.fetch_materializations(keys.SHADOW_COMPARISON, limit=SHADOW_HISTORY).records
    days = {}
    for record in records:
        meta = {k: v.value for k, v in record.asset_materialization.metadata.items()}
        labelled = meta.get("labelled_figures") or {}
        pair = (str(meta.get("shadow_version")), str(meta.get("decided_version")))
        if pair == (str(version), str(incumbent.version)) and labelled.get("frauds"):
            days.setdefault(record.asset_materialization.partition, labelled)  # newest first
    return list(days.items())


def _refusal(reason: str, incumbent_name: str, version: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=GATE_CHECK,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=reason,
        metadata={"compared_with": incumbent_name, "challenger_version": int(version)},
    )


@dg.asset(
    key=keys.CHAMPION,
    group_name="registry",
    deps=[keys.CHALLENGER, keys.DECISION_THRESHOLDS],
    kinds={"mlflow"},
    check_specs=[
        dg.AssetCheckSpec(
            GATE_CHECK,
            asset=keys.CHAMPION,
            blocking=True,
            description="Challenger not worse than the champion (or the baseline) on the "
            "test split beyond the tolerances, with the configured confidence (paired "
            "bootstrap by card); scores 1,000 rows within the latency budget and scores account "
            "takeovers higher; where it ran in shadow beside the champion, not worse on the "
            "matured labels of those days either",
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
    from mlflow import MlflowClient

    mlflow.activate()
    client = MlflowClient()
    candidate = challenger_of_run(context.instance, context.run_id, client)
    current = version_by_alias("champion")
    # The champion gated again (its own challenger) is compared with the baseline, as at first.
    incumbent = current if current and current.version != candidate.version else None
    incumbent_name = (
        f"champion v{incumbent.version}" if incumbent else "HistGradientBoosting baseline"
    )
    unchanged = {
        "champion_version": current.version if current else "none",
        "challenger_version": int(candidate.version),
        "promoted": False,
        "previous_version": "none",
        "approval": config.approval,
        "compared_with": incumbent_name,
    }
    try:
        challenger_model, incumbent_model = load_pair(candidate, incumbent)
    except Unloadable as error:  # whatever breaks a model, it cannot take part
        client.set_model_version_tag(MODEL_NAME, candidate.version, "gate", "failed")
        yield dg.MaterializeResult(metadata=unchanged)
        yield _refusal(str(error), incumbent_name, candidate.version)
        return
    policy = config.policy()
    result = evaluate(
        challenger_model, incumbent_model, _split(lakehouse, "train"),
        _split(lakehouse, "test"), policy,
    )  # fmt: skip
    live = _shadow_days(context.instance, candidate.version, incumbent)
    refused_live, live_table = shadow_reasons(live, policy)
    if refused_live and result.passed:
        result = dataclasses.replace(
            result, passed=False, status="worse in shadow", reasons=refused_live
        )
    log_to_run(client, candidate, result)
    promoted = result.passed and config.approval == "auto"
    former, rollout = (
        roll_out(client, candidate.version, config.canary_share) if promoted else (None, "none")
    )
    client.set_model_version_tag(
        MODEL_NAME, candidate.version, "gate", "passed" if result.passed else "failed"
    )
    if result.passed and not promoted:
        context.log.info(f"v{candidate.version} passed the gate; launch approve_champion_job")
    yield dg.MaterializeResult(
        metadata={
            **unchanged,
            "champion_version": candidate.version if promoted else unchanged["champion_version"],
            "promoted": promoted,
            "previous_version": former or "none",
            "rollout": rollout,
        }
    )
    yield dg.AssetCheckResult(
        check_name=GATE_CHECK,
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=result.description(candidate.version, incumbent_name, policy.confidence),
        metadata={
            "status": result.status,
            "comparison": dg.MetadataValue.md(
                comparison_table(
                    result.intervals, incumbent_name, policy.confidence, result.reported
                )
            ),
            **result.figures(),
            "segments": dg.MetadataValue.md(segment_table(result.segments)),
            "segments_worse": result.worse_segments(),
            "shadow_evidence": dg.MetadataValue.md(live_table)
            if live
            else "none: the challenger did not run in shadow beside this champion",
            "frauds": result.frauds,
            "rows": result.rows,
            "weighted": result.weighted,
            "pr_auc_tolerance": policy.pr_auc_tolerance,
            "recall_tolerance": policy.recall_tolerance,
            "min_frauds": policy.min_frauds,
            "min_segment_frauds": policy.min_segment_frauds,
            "confidence": policy.confidence,
            "resamples": policy.resamples,
            "latency_ms_1000_rows": round(result.latency_ms, 1),
            "takeover_scored_higher": round(result.takeover_share, 4),
            "usual_purchases_perturbed": result.takeover_checked,
            "compared_with": incumbent_name,
            "challenger_version": int(candidate.version),
        },
    )
