"""MLflow per environment: tracking and registry in one database, artifacts under FRAUD_HOME
(embedded: SQLite; production: MLFLOW_TRACKING_URI, e.g. a Postgres-backed server)."""

import dagster as dg

from ml.registry import MODEL_NAME


class MlflowResource(dg.ConfigurableResource):
    """`tracking_uri`: a database URI (`sqlite:///…`, `postgresql://…`) or a server URL;
    `artifact_root`: where a new experiment keeps its artifacts."""

    tracking_uri: str
    artifact_root: str
    experiment: str = MODEL_NAME

    def activate(self) -> str:
        """Point this process's MLflow client here and make the project's experiment (created if
        absent) the active one; its id."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        found = mlflow.get_experiment_by_name(self.experiment)
        experiment_id = (
            found.experiment_id
            if found is not None
            else mlflow.create_experiment(self.experiment, artifact_location=self.artifact_root)
        )
        # A run started without an experiment lands here too, never in MLflow's default
        # experiment, whose artifacts would go to ./mlruns of the working directory.
        mlflow.set_experiment(experiment_id=experiment_id)
        return experiment_id
