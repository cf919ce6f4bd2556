"""Monitoring: each day's drift of the champion's inputs and scores against the window it was
trained on, and its performance on a day once that day's labels have matured."""

import datetime as dt
import time

import dagster as dg
import pyarrow.compute as pc

from assets import keys
from assets.partitions import daily_partitions
from lakehouse.delta import ALL_DAYS
from ml.segments import segment_table
from resources.lakehouse import LakehouseResource
from resources.mlflow import MlflowResource
from resources.monitoring import MonitoringResource

DRIFT_CHECK = "no_drift_alarm"
PERFORMANCE_CHECK = "pr_auc_above_floor"
# Yesterday's window at 03:00 UTC: after the daily job (02:00) has closed the day.
DAILY_REPORT = (
    dg.AutomationCondition.in_latest_time_window()
    & dg.AutomationCondition.cron_tick_passed("0 3 * * *", "UTC")
    & ~dg.AutomationCondition.in_progress()
).with_label("daily at 03:00 UTC, yesterday's partition")


def _champion(mlflow: MlflowResource):
    """The champion's registry version (its tags hold its lineage); a clear failure when there
    is none."""
    from ml.registry import MODEL_NAME, version_by_alias

    mlflow.activate()
    found = version_by_alias("champion")
    if found is None:
        raise dg.Failure(f"no version of {MODEL_NAME} holds alias champion: train one first")
    return found


def _earlier_drift(instance, day: dt.date, days: int, version: str) -> tuple[float, ...]:
    """The weighted drift of the `days` days before `day` (oldest first), from their latest
    reports on the same champion; it stops at the newest day without one."""
    found = []
    for back in range(1, days + 1):
        key = (day - dt.timedelta(days=back)).isoformat()
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(keys.DRIFT_REPORT, asset_partitions=[key]), limit=1
        ).records
        metadata = records[0].asset_materialization.metadata if records else {}
        drift, champion = metadata.get("weighted_drift"), metadata.get("champion_version")
        if drift is None or champion is None or str(champion.value) != str(version):
            break
        found.append(float(drift.value))
    return tuple(reversed(found))


def _report_links(html, json) -> dict[str, dg.MetadataValue]:
    """The saved report in the UI: the HTML as a link, the JSON's path."""
    return {
        "report": dg.MetadataValue.url(html.resolve().as_uri()),
        "report_json": dg.MetadataValue.path(str(json)),
    }


@dg.asset(
    key=keys.DRIFT_REPORT,
    group_name="monitoring",
    deps=[keys.PREDICTION_LOG, keys.CHAMPION, keys.TRAINING_SET, keys.LABELS],
    partitions_def=daily_partitions,
    automation_condition=DAILY_REPORT,
    kinds={"evidently"},
    check_specs=[
        dg.AssetCheckSpec(
            DRIFT_CHECK,
            asset=keys.DRIFT_REPORT,
            description="No drift alarm: importance-weighted input drift, prediction drift and "
            "missed frauds so far stay within the monitoring policy (WARN or ERROR by the "
            "monitoring resource)",
        )
    ],
)
def drift_report(
    context: dg.AssetExecutionContext,
    lakehouse: LakehouseResource,
    mlflow: MlflowResource,
    monitoring: MonitoringResource,
):
    """Evidently report of the day's logged inputs and scores against the champion's training
    window, and the day's drift verdict: weighted and broad input drift, prediction drift,
    missed frauds."""
    import mlflow as mlflow_client

    from ml.importance import logged_importance
    from ml.registry import MODEL_NAME
    from monitoring.drift import EmptyWindow, compare_windows, drift_table, prediction_drift
    from monitoring.drift_policy import POLICY_TEXT, judge, weighted_drift
    from monitoring.windows import logged, missed_fraud_counts
    from monitoring.windows import reference as reference_window

    started = time.perf_counter()
    day = dt.date.fromisoformat(context.partition_key)
    policy = monitoring.drift_policy()
    champion = _champion(mlflow)
    model = mlflow_client.pyfunc.load_model(f"models:/{MODEL_NAME}/{champion.version}")
    current = logged(lakehouse, day, champion.version)
    reference, reference_labels, source = reference_window(
        lakehouse, model, champion.tags.get("training_set_delta_version"), day
    )
    base = {
        "champion_version": champion.version,
        "reference": source,
        "reference_rows": reference.num_rows,
        "current_rows": current.num_rows,
        "policy": dg.MetadataValue.md(POLICY_TEXT),
    }
    result, why = None, f"no score of champion v{champion.version} was logged on {day}"
    if current.num_rows:
        try:
            result = compare_windows(reference, current)
        except EmptyWindow as empty:
            why = f"{empty}: the champion's training set holds no validation or test row"
    if result is None:
        context.log.warning(why)
        yield dg.MaterializeResult(metadata={**base, "dagster/row_count": 0, "status": why})
        yield dg.AssetCheckResult(
            check_name=DRIFT_CHECK, passed=False, severity=monitoring.severity(), description=why
        )
        return
    html, json = result.save(monitoring.reports("drift"), day.isoformat())
    features = [c for c in result.columns if c.column != "score"]
    importance, importance_source = logged_importance(champion.run_id, [c.column for c in features])
    drifted = [c.column for c in features if c.drifted]
    verdict = judge(
        weighted_drift({c.column: c.drifted for c in features}, importance),
        prediction_drift(reference["score"].to_numpy(), current["score"].to_numpy()),
        missed_fraud_counts(lakehouse, day, champion.version, reference_labels, policy),
        policy,
        _earlier_drift(context.instance, day, policy.sustained_days - 1, champion.version),
        drift_share=len(drifted) / len(features) if features else 0.0,
    )
    summary = "; ".join(verdict.reasons) or "no signal crossed its threshold"
    yield dg.MaterializeResult(
        metadata={
            **base,
            "dagster/row_count": current.num_rows,
            "alarm": verdict.alarm,
            "alarm_reasons": verdict.reasons,
            **verdict.figures,
            "drifted_columns": drifted,
            "importance": importance_source,
            **_report_links(html, json),
            "columns": dg.MetadataValue.md(drift_table(result.columns, importance)),
            "duration_s": round(time.perf_counter() - started, 1),
        }
    )
    yield dg.AssetCheckResult(
        check_name=DRIFT_CHECK,
        passed=not verdict.alarm,
        severity=monitoring.severity(),
        description=f"{'alarm' if verdict.alarm else 'no alarm'}: {summary}",
        metadata={**verdict.figures, "drifted_columns": drifted},
    )


PERFORMANCE_METRICS = ("pr_auc", "recall_at_1pct_fpr", "precision", "recall", "brier")


class PerformanceConfig(dg.Config):
    """When a day's labels are final, and which scores count as flagged."""

    maturity_days: int = 45  # as the training set's: a chargeback may take 45 days
    flag_threshold: float = 0.5  # serving's review threshold: analysts see it
    min_segment_frauds: int = 20  # fewer frauds in a segment: shown as too few to measure
    history_days: int = 90  # how far back a customer's age and a known device are looked up


@dg.asset(
    key=keys.MODEL_PERFORMANCE,
    group_name="monitoring",
    deps=[keys.PREDICTION_LOG, keys.CHAMPION, keys.LABELS],
    partitions_def=daily_partitions,
    automation_condition=DAILY_REPORT,
    output_required=False,
    kinds={"evidently"},
)
def model_performance(
    context: dg.AssetExecutionContext,
    config: PerformanceConfig,
    lakehouse: LakehouseResource,
    mlflow: MlflowResource,
    monitoring: MonitoringResource,
):
    """Evidently classification report of the champion's logged scores of the day against
    its matured labels: PR-AUC, recall at 1% FPR, precision and recall when flagged."""
    from monitoring.performance import measure_performance
    from monitoring.windows import labelled_scores, logged

    day = dt.date.fromisoformat(context.partition_key)
    champion = _champion(mlflow)
    matured, cutoff = _matured_labels(lakehouse, day, config.maturity_days)
    if matured is None:
        context.log.info(f"labels of {day} are not final yet (cut-off {cutoff})")
        return
    scored = logged(lakehouse, day, champion.version)
    if scored.num_rows == 0:
        context.log.info(f"no score of champion v{champion.version} was logged on {day}")
        return
    joined = labelled_scores(scored, matured)
    if pc.count_distinct(joined["label"]).as_py() < 2:
        context.log.info(f"{day}: {joined.num_rows} labelled scores, one class only")
        return
    found = measure_performance(joined["label"], joined["score"], config.flag_threshold)
    by_segment = _segment_performance(lakehouse, day, matured, joined, config)
    html, json = found.save(monitoring.reports("performance"), day.isoformat())
    metrics = found.metrics
    shown = {k: round(metrics[k], 4) for k in PERFORMANCE_METRICS}
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": joined.num_rows,
            "champion_version": champion.version,
            "frauds": metrics["positives"],
            **shown,
            "metrics": dg.MetadataValue.md(
                "| metric | value |\n|---|---|\n"
                + "\n".join(f"| {k} | {v:.4f} |" for k, v in shown.items())
            ),
            "segments": dg.MetadataValue.md(segment_table(by_segment)),
            "flag_threshold": config.flag_threshold,
            "label_cutoff": cutoff.isoformat(),
            **_report_links(html, json),
        }
    )


def _matured_labels(lakehouse: LakehouseResource, day: dt.date, maturity_days: int):
    """(the day's labels, final at the data's cut-off, or None while they are not; the
    cut-off)."""
    from lakehouse.training import label_cutoff, mature_labels

    labelled_days = lakehouse.read("gold", "transaction_labels", *ALL_DAYS, columns=["day"])
    cutoff = label_cutoff(labelled_days.column("day")) if labelled_days.num_rows else None
    if cutoff is None or cutoff.date() < day + dt.timedelta(days=maturity_days + 1):
        return None, cutoff
    labels = lakehouse.read("gold", "transaction_labels", day, day)
    return mature_labels(labels, cutoff, maturity_days), cutoff


class ShadowConfig(dg.Config):
    """When a day's labels are final, and the confidence of the labelled comparison."""

    maturity_days: int = 45
    confidence: float = 0.95


@dg.asset(
    key=keys.SHADOW_COMPARISON,
    group_name="monitoring",
    deps=[keys.PREDICTION_LOG, keys.LABELS],
    partitions_def=daily_partitions,
    automation_condition=DAILY_REPORT,
    output_required=False,
)
def shadow_comparison(
    context: dg.AssetExecutionContext, config: ShadowConfig, lakehouse: LakehouseResource
):
    """The shadow model against the one that decided, on the day's same transactions."""
    from deltalake.exceptions import TableNotFoundError

    from monitoring.shadow import compare, paired_scores, shadow_rows_filter

    day = dt.date.fromisoformat(context.partition_key)
    try:
        log = lakehouse.read("monitoring", "prediction_log", day, day,
                             filter_expression=shadow_rows_filter())  # fmt: skip
    except TableNotFoundError:
        log = None
    paired = paired_scores(log) if log is not None and log.num_rows else None
    if paired is None or paired.empty:
        context.log.info(f"no transaction of {day} was scored in shadow")
        return
    matured, cutoff = _matured_labels(lakehouse, day, config.maturity_days)
    labels = None
    if matured is not None:
        labels = matured.select(["transaction_id", "label", "card_id"]).to_pandas()
    comparisons = compare(paired, labels, config.confidence)
    main = max(comparisons, key=lambda c: c.pairs)
    labelled = main.labelled or {}
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(sum(c.pairs for c in comparisons)),
            **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in main.figures().items()},
            "comparisons": dg.MetadataValue.md(_shadow_table(comparisons)),
            "labelled_frauds": labelled.get("frauds", 0),
            # what the promotion gate reads as live evidence of the shadow
            "labelled_figures": dg.MetadataValue.json(labelled),
            "labelled": dg.MetadataValue.md(_labelled_table(main))
            if main.labelled
            else f"labels of {day} are not final yet (cut-off {cutoff})",
        }
    )


def _shadow_table(comparisons) -> str:
    head = (
        "| decided | shadow | pairs | same decision | flagged (decided / shadow) | Pearson | "
        "Spearman | p99 model ms (decided / shadow) |\n" + "|---" * 8 + "|"
    )
    return head + "".join(
        f"\n| v{c.decided_version} | v{c.shadow_version} | {c.pairs} | {c.decision_agreement:.1%} "
        f"| {c.flagged_decided:.2%} / {c.flagged_shadow:.2%} | {c.score_pearson:.3f} "
        f"| {c.score_spearman:.3f} | {c.decided_p99_model_ms:.2f} / {c.shadow_p99_model_ms:.2f} |"
        for c in comparisons
    )


def _labelled_table(comparison) -> str:
    found = comparison.labelled
    head = (f"{found['frauds']} frauds in {found['rows']} labelled pairs\n\n| metric | "
            f"v{comparison.decided_version} (decided) | v{comparison.shadow_version} (shadow) | "
            "difference [interval] |\n|---|---|---|---|")  # fmt: skip
    return head + "".join(
        f"\n| {metric} | {m['champion']:.4f} | {m['challenger']:.4f} | {m['difference']:+.4f} "
        f"[{m['low']:+.4f}, {m['high']:+.4f}] |"
        for metric, m in found.items()
        if isinstance(m, dict)
    )


SEGMENT_COLUMNS = ["transaction_id", "event_timestamp", "customer_id", "device_id", "channel",
                   "merchant_category", "amount_usd"]  # fmt: skip


def _segment_performance(lakehouse, day, matured, joined, config: PerformanceConfig) -> list[dict]:
    """The champion's figures per segment of the day's labelled scores; a customer's age and a
    device's novelty from the `history_days` of transactions before."""
    from ml.segments import performance_by_segment

    history = lakehouse.read(
        "gold", "transaction_labels", day - dt.timedelta(days=config.history_days), day,
        columns=SEGMENT_COLUMNS,
    ).to_pandas()  # fmt: skip
    rows = (
        joined.select(["transaction_id", "label", "score"])
        .join(matured.select(SEGMENT_COLUMNS), "transaction_id")
        .to_pandas()
    )
    return performance_by_segment(
        rows, rows["label"], rows["score"], config.min_segment_frauds, history
    )


@dg.asset_check(
    asset=keys.MODEL_PERFORMANCE,
    name=PERFORMANCE_CHECK,
    partitions_def=daily_partitions,
    description="The champion's PR-AUC on the day's matured labels stays above the monitoring "
    "floor (WARN or ERROR by the monitoring resource)",
)
def performance_above_floor(
    context: dg.AssetCheckExecutionContext, monitoring: MonitoringResource
) -> dg.AssetCheckResult:
    """Judges the partition's latest materialization; too few frauds are not judged."""
    [record] = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(keys.MODEL_PERFORMANCE, asset_partitions=[context.partition_key]),
        limit=1,
    ).records
    metadata = {k: v.value for k, v in record.asset_materialization.metadata.items()}
    pr_auc, frauds, floor = metadata["pr_auc"], metadata["frauds"], monitoring.pr_auc_floor
    if frauds < monitoring.min_frauds:
        return dg.AssetCheckResult(
            passed=True,
            description=f"{frauds} labelled frauds (< {monitoring.min_frauds}): not judged",
            metadata={"pr_auc": pr_auc, "frauds": frauds},
        )
    return dg.AssetCheckResult(
        passed=pr_auc >= floor,
        severity=monitoring.severity(),
        description=f"PR-AUC {pr_auc:.3f} on {frauds} frauds (floor {floor})",
        metadata={"pr_auc": pr_auc, "floor": floor, "frauds": frauds},
    )
