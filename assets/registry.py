"""Registry: the tuned model as challenger, and the promotion gate that moves the champion."""

import time
from dataclasses import asdict

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
    """The gate: on the same test rows (recent rows of held-out cards) the challenger is not
    worse than the champion (or, for the first model, a gradient-boosting baseline on the same
    features) with `confidence`, and scores within a latency budget."""

    # How far below the incumbent the lower confidence bound of the difference may be. Not 0:
    # a model trained on fresher data may tie the champion, and a tie should not keep it. PR-AUC
    # on labels known so far is a guard against a clearly worse ranking, not the decider: both
    # models rank nearly every fraud on top, and which of those frauds are reported yet (some
    # never are) moves it by up to ±0.06 between models equally good on the truth, where recall
    # at 1% FPR follows the truth (bench/RESULTS.md).
    pr_auc_tolerance: float = 0.1
    recall_tolerance: float = 0.05  # recall at 1% FPR
    min_frauds: int = 30  # fewer labelled frauds in the test split: no verdict, no promotion
    confidence: float = 0.95
    resamples: int = 2000
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


def serving_reasons(latency_ms: float, takeover_share: float, config) -> list[str]:
    """The reasons besides quality the challenger may not be promoted: too slow, or misjudging
    account takeovers. A NaN takeover share (no usual purchase to perturb) is not a reason."""
    reasons = []
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


def _comparison_table(intervals: dict, incumbent_name: str, confidence: float) -> str:
    """The paired comparison as a markdown table."""
    from ml.comparison import METRICS

    lines = [
        f"| metric | {incumbent_name} | challenger | difference | one-sided {confidence:.0%} "
        "bounds |",
        "|---|---|---|---|---|",
    ]
    for metric, paired in intervals.items():
        lines.append(
            f"| {METRICS[metric]} | {paired.champion:.4f} | {paired.challenger:.4f} | "
            f"{paired.difference:+.4f} | [{paired.low:+.4f}, {paired.high:+.4f}] |"
        )
    return "\n".join(lines)


def _log_to_run(client, version, intervals: dict, frauds: int, status: str) -> None:
    """The gate's figures on the challenger's MLflow run."""
    from mlflow.entities import Metric, RunTag

    run_id = version.run_id or version.tags.get("mlflow_run_id")
    if not run_id:
        return
    now = int(time.time() * 1000)
    figures = {"gate_frauds": frauds}
    for metric, paired in intervals.items():
        figures |= {
            f"gate_{metric}_delta": paired.difference,
            f"gate_{metric}_delta_low": paired.low,
            f"gate_{metric}_delta_high": paired.high,
        }
    client.log_batch(
        run_id,
        metrics=[Metric(name, float(value), now, 0) for name, value in figures.items()],
        tags=[RunTag("gate_status", status)],
    )


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
            description="Challenger not worse than the champion (or the baseline) on the "
            "test split beyond the tolerances, with the configured confidence (paired "
            "bootstrap by card); scores 1,000 rows within the latency budget and scores account "
            "takeovers higher",
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
    from ml.comparison import decide, paired_bootstrap
    from ml.train import row_weights

    mlflow.activate()
    client = MlflowClient()
    candidate = client.get_model_version_by_alias(MODEL_NAME, "challenger")
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

    def refuse(reason: str):
        client.set_model_version_tag(MODEL_NAME, candidate.version, "gate", "failed")
        yield dg.MaterializeResult(metadata=unchanged)
        yield dg.AssetCheckResult(
            check_name="promotion_gate",
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description=reason,
            metadata={"compared_with": incumbent_name},
        )

    loaded = {}
    for role, version in (("challenger", candidate), ("champion", incumbent)):
        if version is None:
            continue
        try:
            loaded[role] = mlflow_client.pyfunc.load_model(
                f"models:/{MODEL_NAME}/{version.version}"
            )
        except Exception as error:  # whatever breaks a model, it cannot take part
            yield from refuse(f"could not load {role} v{version.version}: {error}")
            return

    def split(name: str):
        only = pc.field("split") == name
        return lakehouse.read("features", "training_set", *ALL_DAYS, filter_expression=only)

    train, test = split("train").to_pandas(), split("test").to_pandas()
    model = loaded["challenger"]
    challenger_scores = scores_of(model, test)
    incumbent_scores = (
        scores_of(loaded["champion"], test) if incumbent else baseline_scores(train, test)
    )
    frauds = int((test["label"] == 1).sum())
    intervals = paired_bootstrap(
        test["label"].to_numpy() * row_weights(test),  # an early report stands for unreported
        incumbent_scores,
        challenger_scores,
        clusters=test["card_id"].to_numpy(),
        resamples=config.resamples,
        confidence=config.confidence,
    )
    tolerances = {"pr_auc": config.pr_auc_tolerance, "recall_at_1pct_fpr": config.recall_tolerance}
    verdict = decide(intervals, tolerances, frauds, config.min_frauds, replacing=bool(incumbent))
    _log_to_run(client, candidate, intervals, frauds, verdict.status)
    latency = _latency_ms(model, test)
    takeover_share, takeover_checked = takeover_scores_higher(
        lambda rows: scores_of(model, rows), test, most_foreign_country(train)
    )
    reasons = verdict.reasons + serving_reasons(latency, takeover_share, config)
    passed = verdict.promote and not reasons
    promoted = passed and config.approval == "auto"
    former = promote(client, candidate.version) if promoted else None
    client.set_model_version_tag(
        MODEL_NAME, candidate.version, "gate", "passed" if passed else "failed"
    )
    if passed and not promoted:
        context.log.info(f"v{candidate.version} passed the gate; launch approve_champion_job")
    yield dg.MaterializeResult(
        metadata={
            **unchanged,
            "champion_version": candidate.version if promoted else unchanged["champion_version"],
            "promoted": promoted,
            "previous_version": former or "none",
        }
    )
    if passed and verdict.status == "not shown worse":
        description = (
            f"v{candidate.version} is not shown worse than {incumbent_name} (no champion "
            f"serving; its {config.confidence:.0%} intervals reach 0)"
        )
    elif passed:
        description = (
            f"v{candidate.version} is {verdict.status} than {incumbent_name} "
            f"with {config.confidence:.0%} confidence"
        )
    else:
        description = (
            f"v{candidate.version} not promoted ({verdict.status} vs {incumbent_name}): "
            + "; ".join(reasons)
        )
    figures = {
        f"{metric}_{name}": value
        for metric, paired in intervals.items()
        for name, value in asdict(paired).items()
    }
    yield dg.AssetCheckResult(
        check_name="promotion_gate",
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "status": verdict.status,
            "comparison": dg.MetadataValue.md(
                _comparison_table(intervals, incumbent_name, config.confidence)
            ),
            **figures,
            "frauds": frauds,
            "rows": len(test),
            "weighted": "weight" in test,
            "pr_auc_tolerance": config.pr_auc_tolerance,
            "recall_tolerance": config.recall_tolerance,
            "min_frauds": config.min_frauds,
            "confidence": config.confidence,
            "resamples": config.resamples,
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
