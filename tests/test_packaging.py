"""The registered model: preprocessing inside, same scores when loaded by alias in a fresh
process, on a SQLite and on a Postgres registry."""

import json
import subprocess
import sys

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from ml.packaging import log_model
from ml.train import TrainParams, train
from resources import build_resources
from resources.mlflow import MODEL_NAME
from tests.support.rows import synthetic_rows

pytestmark = pytest.mark.integration

LOAD_AND_SCORE = """
import json, sys
import mlflow, pandas as pd
mlflow.set_registry_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(f"models:/{sys.argv[2]}@champion")
rows = pd.read_parquet(sys.argv[3])
print(json.dumps(model.predict(rows)["fraud_probability"].tolist()))
"""


@pytest.fixture(params=["sqlite", "postgres"])
def tracking(request, fraud_home, monkeypatch):
    if request.param == "postgres":
        from demo.services import fresh_postgres_database

        monkeypatch.setenv("MLFLOW_TRACKING_URI", fresh_postgres_database("fraud_mlflow_test"))
    resource = build_resources()["mlflow"]
    resource.activate()
    return resource


def test_the_champion_loaded_in_a_fresh_process_scores_like_the_trained_model(tracking, tmp_path):
    trained = train(
        synthetic_rows(1500), synthetic_rows(500, seed=1), TrainParams(epochs=2, batch_size=256)
    )
    scoring = synthetic_rows(40, seed=3).drop(columns=["label"])
    scoring.loc[0, "merchant_category"] = "never-seen"  # the unknown bucket, inside the model
    scoring.loc[1, "amount_usd"] = float("nan")
    with mlflow.start_run(experiment_id=tracking.activate()):
        info = log_model(trained, scoring)
    version = mlflow.register_model(info.model_uri, MODEL_NAME)
    MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", version.version)

    scoring.to_parquet(tmp_path / "rows.parquet")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_AND_SCORE,
            tracking.tracking_uri,
            MODEL_NAME,
            str(tmp_path / "rows.parquet"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    fresh = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    assert np.allclose(fresh, trained.score(scoring), atol=1e-6)
    assert np.isfinite(fresh).all()


def test_the_logged_model_is_also_a_plain_pytorch_model(fraud_home):
    import torch

    trained = train(
        synthetic_rows(600), synthetic_rows(300, seed=1), TrainParams(epochs=1, batch_size=256)
    )
    scoring = synthetic_rows(8, seed=3).drop(columns=["label"])
    with mlflow.start_run(experiment_id=build_resources()["mlflow"].activate()):
        info = log_model(trained, scoring)
    network = mlflow.pytorch.load_model(info.model_uri)
    numeric, codes = trained.preprocessor.transform(scoring)
    with torch.no_grad():
        logits = network(torch.from_numpy(numeric), torch.from_numpy(codes))
    assert np.allclose(torch.sigmoid(logits).numpy(), trained.score(scoring), atol=1e-6)
    assert set(info.flavors) == {"pytorch", "python_function"}
    assert info.signature.inputs.input_names() == trained.preprocessor.input_columns
