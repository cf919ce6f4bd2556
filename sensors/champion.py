"""Rebuild the bento when alias `champion` of fraud-detector moves."""

import dagster as dg

from resources.mlflow import MODEL_NAME, MlflowResource

bento_job = dg.define_asset_job(
    "bento_job",
    selection=dg.AssetSelection.assets(["scoring", "bento"]),
    description="The champion's bento (BentoML model store, bento tagged by version).",
)


def champion_version(mlflow: MlflowResource) -> str | None:
    """The registry version holding alias `champion`, or None."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    mlflow.activate()
    try:
        return MlflowClient().get_model_version_by_alias(MODEL_NAME, "champion").version
    except MlflowException:
        return None


@dg.sensor(
    job=bento_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Builds the champion's bento when alias `champion` moves; run_key = version.",
)
def champion_sensor(context: dg.SensorEvaluationContext, mlflow: MlflowResource):
    version = champion_version(mlflow)
    if version is None:
        return dg.SkipReason(f"no version of {MODEL_NAME} holds alias champion yet")
    return dg.RunRequest(run_key=f"champion-v{version}", tags={"fraud/champion": str(version)})
