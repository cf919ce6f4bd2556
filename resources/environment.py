"""Resources per environment: FRAUD_ENV=local (embedded defaults) or prod (clusters)."""

from __future__ import annotations

import os

import dagster as dg

from features.store import settings_from_environment
from resources.alerts import AlertWebhookResource
from resources.dbt import dbt_cli, load_dbt_project
from resources.feast import FeastResource
from resources.lakehouse import LakehouseResource
from resources.mlflow import MlflowResource
from resources.monitoring import MonitoringResource
from resources.ray import RayResource
from resources.spark import SparkResource
from settings.env import fraud_env, fraud_home, lakehouse_root, mlflow_tracking_uri


def build_resources() -> dict[str, object]:
    """Local: Delta under LAKEHOUSE_URI if set, else $FRAUD_HOME/lakehouse, and Spark local[2]
    with SPARK_DRIVER_MEMORY (default 4g), or the Spark Connect server at SPARK_REMOTE if set.
    Prod: LAKEHOUSE_URI (credentials from the usual AWS_*/GOOGLE_*/AZURE_* variables, read by
    delta-rs), a Spark Connect cluster at SPARK_REMOTE, and the backends' URLs named as variables
    (`_secret_safe`)."""
    home = fraud_home()
    feast_settings = settings_from_environment(home)
    tracking_uri = mlflow_tracking_uri()
    retention = int(os.environ.get("FRAUD_DELTA_RETENTION_DAYS", 7))
    if fraud_env() == "prod":
        lakehouse = LakehouseResource(
            root=dg.EnvVar("LAKEHOUSE_URI"), landing=str(home / "landing"), retention_days=retention
        )
        spark = SparkResource(remote=dg.EnvVar("SPARK_REMOTE"))
        feast_settings |= _secret_safe(registry="FEAST_REGISTRY", online_store="FEAST_ONLINE_STORE")
        tracking_uri = _secret_safe(uri="MLFLOW_TRACKING_URI").get("uri", tracking_uri)
    else:
        lakehouse = LakehouseResource(
            root=lakehouse_root(), landing=str(home / "landing"), retention_days=retention
        )
        spark = SparkResource(
            remote=os.environ.get("SPARK_REMOTE") or None,
            driver_memory=os.environ.get("SPARK_DRIVER_MEMORY") or "4g",
        )
    feast = FeastResource(**feast_settings)
    mlflow = MlflowResource(
        tracking_uri=tracking_uri, artifact_root=str(home / "mlflow" / "artifacts")
    )
    return {
        "ray": RayResource(address=os.environ.get("RAY_ADDRESS", "")),
        "mlflow": mlflow,
        "lakehouse": lakehouse,
        "spark": spark,
        "dbt": dbt_cli(load_dbt_project()),
        "feast": feast,
        "monitoring": MonitoringResource(reports_dir=str(home / "reports")),
        "alerts": AlertWebhookResource(
            **_secret_safe(url="FRAUD_ALERT_WEBHOOK_URL"),
            dagster_url=os.environ.get("FRAUD_DAGSTER_URL") or "http://localhost:3000",
        ),
    }


def _secret_safe(**variables: str) -> dict[str, dg.EnvVar]:
    """Each set variable as `dg.EnvVar`: database and Redis URLs may carry passwords, so the
    resources name the variable and read its value at run time (never shown as resource config
    in the UI)."""
    return {field: dg.EnvVar(name) for field, name in variables.items() if os.environ.get(name)}
