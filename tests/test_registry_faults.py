"""The registry fails closed: a version is "missing" only when MLflow says it is not found; a
broken store is an error, never "no champion" (which would promote a challenger unchecked);
registrations from four processes at once against the Postgres-backed registry lose nothing."""

import sqlite3

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ml.registry import MODEL_NAME, version_by_alias

pytestmark = pytest.mark.integration  # MLflow on SQLite and on Postgres


@pytest.fixture
def registry(tmp_path):
    path = tmp_path / "mlflow.db"
    uri = f"sqlite:///{path}"
    client = MlflowClient(uri, registry_uri=uri)  # not the registry an earlier test set
    client.create_registered_model(MODEL_NAME)
    return client, path


def test_a_missing_model_or_alias_is_none(registry, tmp_path):
    client, _ = registry
    assert version_by_alias("champion", client) is None  # the model has no such alias
    empty_uri = f"sqlite:///{tmp_path / 'empty.db'}"
    empty = MlflowClient(empty_uri, registry_uri=empty_uri)
    assert version_by_alias("champion", empty) is None  # no such model


def test_a_broken_store_raises_instead_of_answering_none(registry):
    client, path = registry
    with sqlite3.connect(path) as store:  # the aliases' table lost
        store.execute("DROP TABLE registered_model_aliases")
    with pytest.raises(MlflowException, match="registered_model_aliases"):
        version_by_alias("champion", client)


def _register_as_challenger(uri: str, source: str) -> str:
    """What registry/challenger does, in a process of its own: register, then move the alias."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    version = mlflow.register_model(source, MODEL_NAME, tags={"source": source}).version
    MlflowClient().set_registered_model_alias(MODEL_NAME, "challenger", version)
    return str(version)


def test_four_processes_registering_at_once_get_unique_versions_and_one_alias(tmp_path):
    import multiprocessing

    from demo.services import fresh_postgres_database

    uri = fresh_postgres_database("fraud_mlflow_concurrency_test")
    MlflowClient(uri, registry_uri=uri).create_registered_model(MODEL_NAME)
    sources = [str(tmp_path / f"model-{i}") for i in range(8)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        versions = pool.starmap(_register_as_challenger, [(uri, s) for s in sources])
    assert sorted(versions, key=int) == [str(v) for v in range(1, 9)]  # unique, none lost
    client = MlflowClient(uri, registry_uri=uri)
    held = client.get_model_version_by_alias(MODEL_NAME, "challenger")
    held_version = str(held.version)
    assert held_version in versions and held.tags["source"] == sources[versions.index(held_version)]
    assert {v.tags["source"] for v in client.search_model_versions(f"name='{MODEL_NAME}'")} == set(
        sources
    )
