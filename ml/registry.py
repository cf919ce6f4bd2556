"""The model registry as serving and the Dagster assets read it (MLflow, no Dagster): the model's
name, the version holding an alias, and the champion loaded as a pyfunc."""

MODEL_NAME = "fraud-detector"


# What MLflow answers when the model or the alias does not exist (SQL and REST stores alike).
NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def version_by_alias(alias: str, client=None):
    """The version of `MODEL_NAME` holding `alias`, or None when MLflow says there is none. Any
    other error is raised: a registry that cannot answer must not read as "no champion", which
    would promote a challenger unchecked."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return (client or MlflowClient()).get_model_version_by_alias(MODEL_NAME, alias)
    except MlflowException as error:
        if error.error_code in NOT_FOUND and "not found" in error.message.lower():
            return None
        raise


ALIAS_ATTEMPTS = 5


def set_alias(alias: str, version: str, client=None) -> None:
    """Point `alias` of `MODEL_NAME` at `version`. MLflow's SQL store moves an alias by reading,
    then inserting or updating: two processes moving one alias at once can both find it absent,
    and the second insert breaks the table's key. Then the alias exists; the move is retried
    (seen with four processes registering at once on Postgres)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = client or MlflowClient()
    for attempt in range(1, ALIAS_ATTEMPTS + 1):
        try:
            return client.set_registered_model_alias(MODEL_NAME, alias, version)
        except MlflowException as error:
            if attempt == ALIAS_ATTEMPTS or "already exists" not in error.message:
                raise


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
