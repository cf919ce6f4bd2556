"""Monitoring: each day's drift of the champion's inputs and scores against the window it was
trained on, and its performance on a day once that day's labels have matured."""

import datetime as dt
import time

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assets import keys
from assets.partitions import daily_partitions
from lakehouse.delta import ALL_DAYS
from ml.promotion import scores_of
from resources.lakehouse import LakehouseResource
from resources.mlflow import MlflowResource
from resources.monitoring import MonitoringResource

DRIFT_CHECK = "no_drift_alarm"
TIMESTAMP = pa.timestamp("us", tz="UTC")
MIN_WEEKDAY_ROWS = 1000  # fewer reference rows of the day's weekday: every day's are used
WARMUP = dt.timedelta(days=30)  # the features' longest window
POLICY_TEXT = (
    "The day is compared with the same weekday of the champion's reference window. "
    "An alarm when any signal crosses its threshold (monitoring resource): the importance shares "
    "of the inputs whose Evidently drift test failed, summed (`weighted_drift`; or the lower "
    "`sustained_drift_threshold` on `sustained_days` reported days running); the share of "
    "inputs whose test failed, importance aside (`drift_share`); the Wasserstein "
    "distance of the day's scores from the reference's, in reference standard deviations "
    "(`prediction_drift`); and the cards with a fraud reported by the day's end among the label "
    "window's transactions that the champion let through, against its reference window (Fisher's "
    "exact test, one-sided, `missed_fraud_p_value`; first-party disputes left out)."
)
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


def _logged(lakehouse: LakehouseResource, day: dt.date, version: str) -> pa.Table:
    """The prediction log's rows of `day` scored by model `version`, the model's inputs as
    columns (none when nothing was logged)."""
    from deltalake.exceptions import TableNotFoundError

    by_version = pc.field("model_version") == str(version)
    try:
        rows = lakehouse.read(
            "monitoring", "prediction_log", day, day, filter_expression=by_version
        )
    except TableNotFoundError:
        return pa.table({})
    fields = rows.schema.field("features").type
    inputs = rows.column("features").combine_chunks().flatten()
    columns = {field.name: values for field, values in zip(fields, inputs, strict=True)}
    return pa.table(
        {**columns, "score": rows.column("score"), "transaction_id": rows["transaction_id"]}
    )


def _reference(lakehouse: LakehouseResource, model, training_set_version: str | None, day):
    """The newest window of the champion's training set, its validation and test splits (of
    the table's version it was trained on, while that version is readable), with its scores:
    (inputs and score of `day`'s weekday; ids, days, cards, labels and score of every day;
    what it is).
    Not the train split, nor rows within `WARMUP` of the training set's first: their 30-day
    features are still filling up, which a day of serving never looks like. The same weekday:
    a Saturday's daily counts are not a Tuesday's, and that is no drift."""
    from deltalake.exceptions import DeltaError

    from ml.registry import input_columns

    newest = pc.field("split").isin(["validation", "test"])
    version = int(training_set_version) if training_set_version else None
    try:
        read = {"version": version}
        first = lakehouse.read("features", "training_set", *ALL_DAYS, columns=["event_timestamp"],
                               **read)  # fmt: skip
        source = f"features/training_set v{version}, validation and test splits"
    except (DeltaError, OSError) as gone:  # vacuumed or rebuilt: the latest rows stand in
        read = {}
        first = lakehouse.read("features", "training_set", *ALL_DAYS, columns=["event_timestamp"])
        source = f"features/training_set latest (v{version} unreadable: {gone})"
    rows = lakehouse.read("features", "training_set", *ALL_DAYS, filter_expression=newest, **read)
    warm = pc.greater_equal(
        rows["event_timestamp"], pc.min(first["event_timestamp"]).as_py() + WARMUP
    )
    if pc.any(warm).as_py():
        rows = rows.filter(warm)
    else:  # a history shorter than the warm-up: every held-out row
        source += ", warm-up included"
    inputs = rows.select(input_columns(model))
    scores = pa.array(scores_of(model, inputs.to_pandas()), pa.float64())
    labelled = rows.select(["transaction_id", "day", "card_id", "label"])
    labelled = labelled.append_column("score", scores)
    inputs = inputs.append_column("score", scores)
    # ISO weekday, Monday 1, as pyarrow's day_of_week counts from Monday 0.
    same_weekday = pc.equal(pc.day_of_week(rows["event_timestamp"]), day.isoweekday() - 1)
    if (pc.sum(same_weekday).as_py() or 0) >= MIN_WEEKDAY_ROWS:
        return inputs.filter(same_weekday), labelled, f"{source}, {day:%A}s"
    return inputs, labelled, f"{source}, every day (too few {day:%A}s)"


def _importance(champion, inputs: list[str]) -> tuple[dict[str, float], str]:
    """The champion's permutation importance per input (logged with its model), or equal
    shares when it has none: (shares, where they come from)."""
    import mlflow as mlflow_client

    from ml.importance import IMPORTANCE_FILE

    try:
        found = mlflow_client.artifacts.load_dict(f"runs:/{champion.run_id}/{IMPORTANCE_FILE}")
    except Exception as missing:  # a model logged without it: every input counts the same
        return {c: 1 / len(inputs) for c in inputs}, f"equal ({IMPORTANCE_FILE}: {missing})"
    source = f"permutation importance of run {champion.run_id}"
    return {c: float(found.get(c, 0.0)) for c in inputs}, source


def _missed_frauds(lakehouse, day: dt.date, version: str, reference, policy):
    """The champion's reported fraud cards of the label window (reports known by the day's end)
    and those it missed, with the same counts in its `reference` window (a table of
    `transaction_id`, `day`, `card_id`, `label` and `score`); first-party disputes left out of
    both."""
    from deltalake.exceptions import TableNotFoundError

    from monitoring.drift_policy import MissedFrauds, missed_frauds

    first_party = pa.array(policy.first_party_reason_codes, pa.string())

    def counted(table: pa.Table, frauds: pa.Array) -> tuple[int, int]:
        cards, scores = (table[c].to_numpy(zero_copy_only=False) for c in ("card_id", "score"))
        labels = frauds.to_numpy(zero_copy_only=False).astype(int)
        return missed_frauds(cards, labels, scores, policy.review_threshold)

    def third_party(table: pa.Table, frauds: pa.Array) -> pa.Array:
        return pc.and_(frauds, pc.invert(pc.is_in(table["reason_code"], first_party)))

    first = day - dt.timedelta(days=policy.label_window_days - 1)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    by_champion = pc.field("model_version") == str(version)
    try:
        scored = lakehouse.read(
            "monitoring", "prediction_log", first, day, filter_expression=by_champion,
            columns=["transaction_id", "score"],
        )  # fmt: skip
        labels = lakehouse.read(
            "gold", "transaction_labels", first, day,
            columns=["transaction_id", "card_id", "reported_at", "reason_code"],
        )  # fmt: skip
        reference_days = pc.min_max(reference["day"])
        reasons = lakehouse.read(
            "gold", "transaction_labels", reference_days["min"].as_py() or day,
            reference_days["max"].as_py() or day, columns=["transaction_id", "reason_code"],
            filter_expression=pc.field("reason_code").isin(first_party),
        )  # fmt: skip
    except TableNotFoundError:
        frauds = pc.equal(reference["label"], 1)
        return MissedFrauds(0, 0, *counted(reference, frauds))
    reference = reference.join(reasons, "transaction_id")
    reference_counts = counted(reference, third_party(reference, pc.equal(reference["label"], 1)))
    best = scored.group_by("transaction_id").aggregate([("score", "max")])
    joined = best.join(labels, "transaction_id").rename_columns({"score_max": "score"})
    reported = pc.fill_null(pc.less(joined["reported_at"], pa.scalar(end, TIMESTAMP)), False)
    found_cards, found_missed = counted(joined, third_party(joined, reported))
    return MissedFrauds(found_cards, found_missed, *reference_counts)


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


def _prediction_drift(reference_scores: np.ndarray, current_scores: np.ndarray) -> float:
    """The Wasserstein distance of the day's scores from the reference's, in reference standard
    deviations (Evidently's normed measure, whatever the window's size)."""
    from scipy.stats import wasserstein_distance

    spread = float(np.std(reference_scores)) or 1.0
    return float(wasserstein_distance(reference_scores, current_scores)) / spread


def _is_category(data_type: pa.DataType) -> bool:
    return (
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_boolean(data_type)
        or pa.types.is_dictionary(data_type)
    )


def _report_links(html, json) -> dict[str, dg.MetadataValue]:
    """The saved report in the UI: the HTML as a link, the JSON's path."""
    return {
        "report": dg.MetadataValue.url(html.resolve().as_uri()),
        "report_json": dg.MetadataValue.path(str(json)),
    }


def _drift_table(columns, importance: dict[str, float]) -> dg.MetadataValue:
    """Drifted columns first, then by the model's reliance on them."""
    ordered = sorted(columns, key=lambda c: (not c.drifted, -importance.get(c.column, 0.0)))
    rows = "\n".join(
        f"| {c.column} | {importance.get(c.column, float('nan')):.3f} | {c.method} | "
        f"{c.score:.3f} | {c.threshold:.2f} | {'**drifted**' if c.drifted else 'ok'} |"
        for c in ordered
    )
    return dg.MetadataValue.md(
        "| column | importance | test | score | threshold | verdict |\n|---|---|---|---|---|---|\n"
        + rows
    )


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

    from ml.registry import MODEL_NAME
    from monitoring.drift import EmptyWindow, detect_drift, sketch
    from monitoring.drift_policy import judge, weighted_drift

    started = time.perf_counter()
    day = dt.date.fromisoformat(context.partition_key)
    policy = monitoring.drift_policy()
    champion = _champion(mlflow)
    model = mlflow_client.pyfunc.load_model(f"models:/{MODEL_NAME}/{champion.version}")
    current = _logged(lakehouse, day, champion.version)
    reference, reference_labels, source = _reference(
        lakehouse, model, champion.tags.get("training_set_delta_version"), day
    )
    numeric = [f.name for f in reference.schema if not _is_category(f.type)]
    categorical = [f.name for f in reference.schema if _is_category(f.type)]
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
            result = detect_drift(
                sketch(reference, numeric, categorical),
                current.select(reference.column_names).to_pandas(),
                numeric,
                categorical,
                data_summary=True,
            )
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
    importance, importance_source = _importance(champion, [c.column for c in features])
    drifted = [c.column for c in features if c.drifted]
    verdict = judge(
        weighted_drift({c.column: c.drifted for c in features}, importance),
        _prediction_drift(reference["score"].to_numpy(), current["score"].to_numpy()),
        _missed_frauds(lakehouse, day, champion.version, reference_labels, policy),
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
            "columns": _drift_table(result.columns, importance),
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
    from lakehouse.training import label_cutoff, mature_labels
    from monitoring.performance import measure_performance

    day = dt.date.fromisoformat(context.partition_key)
    champion = _champion(mlflow)
    labelled_days = lakehouse.read("gold", "transaction_labels", *ALL_DAYS, columns=["day"])
    mature_on = day + dt.timedelta(days=config.maturity_days + 1)
    cutoff = label_cutoff(labelled_days.column("day")) if labelled_days.num_rows else None
    if cutoff is None or cutoff.date() < mature_on:
        context.log.info(f"labels of {day} are final once the data reaches {mature_on}")
        return
    matured = mature_labels(
        lakehouse.read("gold", "transaction_labels", day, day), cutoff, config.maturity_days
    )
    scored = _logged(lakehouse, day, champion.version)
    if scored.num_rows == 0:
        context.log.info(f"no score of champion v{champion.version} was logged on {day}")
        return
    joined = (
        scored.select(["transaction_id", "score"])
        .group_by("transaction_id")
        .aggregate([("score", "max")])  # scored on several paths: the highest score counts
        .join(matured.select(["transaction_id", "label"]), "transaction_id")
    )
    labels_of, scores_of_day = joined.column("label"), joined.column("score_max")
    if pc.count_distinct(labels_of).as_py() < 2:
        context.log.info(f"{day}: {joined.num_rows} labelled scores, one class only")
        return
    found = measure_performance(labels_of, scores_of_day, config.flag_threshold)
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
            "flag_threshold": config.flag_threshold,
            "label_cutoff": cutoff.isoformat(),
            **_report_links(html, json),
        }
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
