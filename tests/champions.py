"""A small registered champion for serving tests: trained on synthetic rows whose dtypes are the
online lookup's (counts as int64), logged and aliased `champion` in the current MLflow store."""

import mlflow

from tests.test_model import _rows


def register_champion(epochs: int = 1) -> str:
    """Train, log and register a model; alias `champion` moves to it. Its registry version."""
    from mlflow import MlflowClient

    from ml.packaging import log_model
    from ml.train import TrainParams, train
    from resources.mlflow import MODEL_NAME

    rows = _rows(2000).astype({"customer_daily__txn_count_30d": "int64"})
    valid = _rows(600, seed=1).astype(rows.dtypes.to_dict())
    trained = train(rows, valid, TrainParams(epochs=epochs, batch_size=256))
    with mlflow.start_run():
        info = log_model(trained, rows.drop(columns="label"))
    version = str(mlflow.register_model(info.model_uri, MODEL_NAME).version)
    MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", version)
    return version
