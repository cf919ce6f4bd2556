"""The canary's judge: while a new champion decides a share of traffic beside the previous one,
compare the two on the prediction log since the rollout began (`monitoring.canary`), then
complete the rollout or roll `champion` back, by a run of `rollout_job` whose tags say why."""

import datetime as dt

import dagster as dg
import pyarrow.compute as pc

from jobs.rollout import rollout_job
from resources.lakehouse import LakehouseResource
from resources.mlflow import MlflowResource
from resources.monitoring import MonitoringResource

LOG_COLUMNS = ["route", "model_version", "error", "model_ms", "score"]


def rollout_rows(lakehouse: LakehouseResource, versions: list[str], since: dt.datetime):
    """The prediction log's decided rows of `versions` scored since `since`, in a rollout."""
    import pyarrow as pa
    from deltalake.exceptions import TableNotFoundError

    today = dt.datetime.now(dt.UTC).date()
    decided = (
        pc.field("path").isin(["online", "stream"])
        & pc.field("model_version").isin(versions)
        & pc.is_valid(pc.field("route"))
        & (pc.field("scored_at") >= since)
    )
    try:
        return lakehouse.read("monitoring", "prediction_log", since.date(), today,
                              filter_expression=decided, columns=LOG_COLUMNS)  # fmt: skip
    except (TableNotFoundError, KeyError, pa.ArrowInvalid):  # no log, or no routes logged yet
        return None


@dg.sensor(
    job=rollout_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="During a canary rollout: completes it once the canary is not worse than the "
    "previous champion on error rate, p99 model time and scores, or rolls it back.",
)
def canary_sensor(
    context: dg.SensorEvaluationContext,
    mlflow: MlflowResource,
    lakehouse: LakehouseResource,
    monitoring: MonitoringResource,
):
    from mlflow import MlflowClient

    from ml.registry import version_by_alias
    from ml.rollout import in_rollout
    from monitoring.canary import judge_canary

    mlflow.activate()
    client = MlflowClient()
    champion = version_by_alias("champion", client)
    rollout = in_rollout(champion) if champion is not None else None
    if rollout is None:
        return dg.SkipReason("no canary rollout under way")
    previous = version_by_alias("previous", client)
    canary, (_, started) = str(champion.version), rollout
    versions = [canary] + ([str(previous.version)] if previous is not None else [])
    rows = rollout_rows(lakehouse, versions, started)
    if rows is None:
        return dg.SkipReason(f"canary v{canary}: nothing logged since {started:%H:%M} UTC")
    minutes = (dt.datetime.now(dt.UTC) - started).total_seconds() / 60
    verdict = judge_canary(rows, canary, minutes, monitoring.canary_policy())
    figures = ", ".join(f"{k} {v}" for k, v in verdict.figures.items())
    if verdict.action == "wait":
        return dg.SkipReason(f"canary v{canary}: {verdict.reason} ({figures})")
    reason = f"{verdict.reason} ({figures})"
    config = {"action": verdict.action, "version": canary, "reason": reason}
    tags = {"fraud/rollout": verdict.action, "fraud/rollout_version": canary,
            "fraud/rollout_reason": reason[:4000]}  # fmt: skip
    return dg.RunRequest(
        run_key=f"rollout-v{canary}-{started.isoformat()}",
        run_config={"ops": {"finish_rollout": {"config": config}}},
        tags=tags,
    )
