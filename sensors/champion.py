"""Rebuild the bento when alias `champion` of fraud-detector moves."""

import dagster as dg

from jobs import bento_job
from ml.registry import MODEL_NAME, version_by_alias
from resources.mlflow import MlflowResource


@dg.sensor(
    job=bento_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Builds the champion's bento when alias `champion` moves; run_key = version.",
)
def champion_sensor(context: dg.SensorEvaluationContext, mlflow: MlflowResource):
    mlflow.activate()
    found = version_by_alias("champion")
    if found is None:
        return dg.SkipReason(f"no version of {MODEL_NAME} holds alias champion yet")
    return dg.RunRequest(
        run_key=f"champion-v{found.version}", tags={"fraud/champion": str(found.version)}
    )
