"""The registry fails closed: a version is "missing" only when MLflow says it is not found; a
broken store is an error, never "no champion" (which would promote a challenger unchecked)."""

import sqlite3

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ml.registry import MODEL_NAME, version_by_alias

pytestmark = pytest.mark.integration


@pytest.fixture
def registry(tmp_path):
    path = tmp_path / "mlflow.db"
    client = MlflowClient(f"sqlite:///{path}")
    client.create_registered_model(MODEL_NAME)
    return client, path


def test_a_missing_model_or_alias_is_none(registry, tmp_path):
    client, _ = registry
    assert version_by_alias("champion", client) is None  # the model has no such alias
    empty = MlflowClient(f"sqlite:///{tmp_path / 'empty.db'}")
    assert version_by_alias("champion", empty) is None  # no such model


def test_a_broken_store_raises_instead_of_answering_none(registry):
    client, path = registry
    with sqlite3.connect(path) as store:  # the aliases' table lost
        store.execute("DROP TABLE registered_model_aliases")
    with pytest.raises(MlflowException, match="registered_model_aliases"):
        version_by_alias("champion", client)
