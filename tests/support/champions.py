"""What serving tests start from: features online and a small registered `champion`."""

import mlflow

from tests.support.rows import synthetic_rows


def register_model(epochs: int = 1, broken: bool = False) -> str:
    """Train on synthetic rows whose dtypes are the online lookup's (counts as int64), log and
    register the model: its registry version. `broken`: its output layer's bias raised so far
    that it calls every transaction a fraud (a deliberately broken model that raises no error)."""
    import torch

    from ml.packaging import log_model
    from ml.train import TrainParams, train
    from resources.mlflow import MODEL_NAME

    rows = synthetic_rows(2000).astype({"customer_daily__txn_count_30d": "int64"})
    valid = synthetic_rows(600, seed=1).astype(rows.dtypes.to_dict())
    trained = train(rows, valid, TrainParams(epochs=epochs, batch_size=256))
    if broken:
        with torch.no_grad():
            trained.network.mlp[-1].bias += 50.0
    with mlflow.start_run():
        info = log_model(trained, rows.drop(columns="label"))
    return str(mlflow.register_model(info.model_uri, MODEL_NAME).version)


def register_champion(epochs: int = 1) -> str:
    """`register_model`, and alias `champion` moves to it. Its registry version."""
    from mlflow import MlflowClient

    from resources.mlflow import MODEL_NAME

    version = register_model(epochs)
    MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", version)
    return version


def features_online_with_a_champion(home, days) -> tuple[dict, str]:
    """Gold features of `days` (tests.support.gold) applied and materialized online, and a
    champion in this environment's registry: (the resources, the champion's version)."""
    import dagster as dg

    from assets.features import feast_registry, online_store
    from assets.partitions import range_tags
    from resources import build_resources
    from tests.support.gold import write_gold

    write_gold(home, days=days)
    resources, instance = build_resources(), dg.DagsterInstance.ephemeral()
    assert dg.materialize([feast_registry], resources=resources, instance=instance).success
    assert dg.materialize([online_store], resources=resources, instance=instance,
                          tags=range_tags(*days)).success  # fmt: skip
    resources["mlflow"].activate()
    return resources, register_champion(epochs=2)
