"""The model registry as serving and the Dagster assets read it (MLflow, no Dagster): the model's
name, the version holding an alias, and the champion loaded as a pyfunc."""

MODEL_NAME = "fraud-detector"


def version_by_alias(alias: str, client=None):
    """The version of `MODEL_NAME` holding `alias`, or None."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return (client or MlflowClient()).get_model_version_by_alias(MODEL_NAME, alias)
    except MlflowException:
        return None


def load_by_alias(alias: str = "champion"):
    """(pyfunc model, registry version) of the version holding `alias`; a clear error if none."""
    import mlflow

    found = version_by_alias(alias)
    if found is None:
        raise LookupError(f"no version of {MODEL_NAME} holds alias {alias!r}")
    return mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{found.version}"), str(found.version)


def input_columns(model) -> list[str]:
    """The columns a logged model's pyfunc reads (its signature's inputs)."""
    return model.metadata.get_input_schema().input_names()
