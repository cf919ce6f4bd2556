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


@pytest.mark.faults
def test_a_broken_store_raises_instead_of_answering_none(registry):
    client, path = registry
    with sqlite3.connect(path) as store:  # the aliases' table lost
        store.execute("DROP TABLE registered_model_aliases")
    with pytest.raises(MlflowException, match="registered_model_aliases"):
        version_by_alias("champion", client)


# What registry/challenger does, in a process of its own: register, then move the alias; twice.
REGISTER = """
import json, sys
import mlflow
from ml.registry import set_alias
name, uri, sources = sys.argv[1], sys.argv[2], sys.argv[3:]
mlflow.set_tracking_uri(uri)
mlflow.set_registry_uri(uri)
versions = []
for source in sources:
    version = mlflow.register_model(source, name, tags={"source": source}).version
    set_alias("challenger", version)
    versions.append(str(version))
print(json.dumps(dict(zip(sources, versions))))
"""


@pytest.mark.faults
def test_four_processes_registering_at_once_get_unique_versions_and_one_alias(tmp_path):
    import json
    import subprocess
    import sys

    from demo.services import fresh_postgres_database

    uri = fresh_postgres_database("fraud_mlflow_concurrency_test")
    MlflowClient(uri, registry_uri=uri).create_registered_model(MODEL_NAME)
    sources = [str(tmp_path / f"model-{i}") for i in range(8)]
    processes = [
        subprocess.Popen([sys.executable, "-c", REGISTER, MODEL_NAME, uri, *sources[i : i + 2]],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(0, 8, 2)
    ]  # fmt: skip
    registered = {}
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
        registered |= json.loads(out.strip().splitlines()[-1])
    versions = sorted(registered.values(), key=int)
    assert versions == [str(v) for v in range(1, 9)]  # unique, none lost
    client = MlflowClient(uri, registry_uri=uri)
    held = client.get_model_version_by_alias(MODEL_NAME, "challenger")
    assert registered[held.tags["source"]] == str(held.version)  # the alias and its tags agree
    tagged = {v.tags["source"]: str(v.version) for v in client.search_model_versions(
        f"name='{MODEL_NAME}'")}  # fmt: skip
    assert tagged == registered
