"""The registered model as MLflow stores it: the PyTorch network (MLflow's `pytorch` flavor) and,
as its `python_function`, the network with its fitted preprocessing, which scores raw rows.
This module is that python_function's loader."""

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

MODEL_FILES = ("preprocessor.json", "network.json", "weights.pt")


def save_bundle(trained, folder: Path) -> Path:
    """Preprocessing (JSON), network shape (JSON) and weights (a state dict) in `folder`."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "preprocessor.json").write_text(json.dumps(trained.preprocessor.to_dict()))
    (folder / "network.json").write_text(json.dumps(trained.network.config.to_dict()))
    state = {k: v.detach().cpu() for k, v in trained.network.state_dict().items()}
    torch.save(state, folder / "weights.pt")
    return folder


def load_bundle(folder: Path):
    """The TrainedModel saved by `save_bundle`, on CPU."""
    import torch

    from ml.model import FraudNet, ModelConfig
    from ml.preprocessing import Preprocessor
    from ml.train import TrainedModel

    network = FraudNet(ModelConfig.from_dict(json.loads((folder / "network.json").read_text())))
    network.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))
    network.eval()
    preprocessor = Preprocessor.from_dict(json.loads((folder / "preprocessor.json").read_text()))
    return TrainedModel(preprocessor, network)


class _RowScorer:
    """The python_function of the logged model: predict(rows) -> a frame with
    `fraud_probability`, one row per scoring row, preprocessing included."""

    def __init__(self, trained):
        self._model = trained

    def predict(self, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return pd.DataFrame({"fraud_probability": self._model.score(model_input)})

    def get_raw_model(self):
        """The TrainedModel (preprocessing and network): `score(frame)` without the signature
        checks, for callers that build their rows to the signature themselves."""
        return self._model


def _load_pyfunc(data_path: str, model_config=None) -> _RowScorer:
    """MLflow's entry point for `mlflow.pyfunc.load_model` (this module is the loader)."""
    return _RowScorer(load_bundle(Path(data_path)))


def save_model(path, trained, mlflow_model=None, signature=None, input_example=None, **kwargs):
    """An MLflow model with two flavors: `pytorch`, the network alone in PyTorch's pickle-free
    export format (for `mlflow.pytorch.load_model`: it takes the encoded tensors), and
    `python_function`, which takes the scoring rows (`signature`, `input_example`) as they are,
    strings included, and encodes them: MLflow's own PyTorch pyfunc casts its input to float32."""
    import mlflow.pytorch
    import numpy as np
    import torch
    from mlflow import pyfunc
    from mlflow.models import Model
    from mlflow.models.signature import ModelSignature
    from mlflow.models.utils import _save_example
    from mlflow.types import Schema, TensorSpec

    mlflow_model = mlflow_model or Model()
    numeric, codes = trained.preprocessor.transform(input_example)
    tensors = ModelSignature(
        inputs=Schema(
            [
                TensorSpec(np.dtype(np.float32), (-1, numeric.shape[1]), "numeric"),
                TensorSpec(np.dtype(np.int64), (-1, codes.shape[1]), "categorical"),
            ]
        )
    )
    mlflow.pytorch.save_model(
        trained.network.cpu().eval(),
        path,
        mlflow_model=mlflow_model,
        signature=tensors,
        input_example=(numeric, codes),
        code_paths=[str(Path(__file__).parent)],
        pip_requirements=[
            f"torch=={torch.__version__}",
            f"mlflow=={mlflow.__version__}",
            f"pandas=={pd.__version__}",
        ],
    )
    save_bundle(trained, Path(path) / "bundle")
    # The model's face is its python_function: the rows in, a probability out.
    mlflow_model.flavors.pop(pyfunc.FLAVOR_NAME, None)
    pyfunc.add_to_model(
        mlflow_model,
        loader_module=__name__,
        data="bundle",
        code="code",
        conda_env="conda.yaml",
        python_env="python_env.yaml",
    )
    mlflow_model.signature = signature
    _save_example(mlflow_model, input_example, str(path))
    mlflow_model.save(str(Path(path) / "MLmodel"))


def log_model(trained, example: pd.DataFrame) -> "ModelInfo":
    """Log `trained` in the active MLflow run as `model`, with signature and input example
    (the raw scoring columns: the ratios are computed inside)."""
    import sys

    from mlflow.models import Model, infer_signature

    example = example.reindex(columns=trained.preprocessor.input_columns).head(5)
    return Model.log(
        artifact_path=None,
        name="model",
        flavor=sys.modules[__name__],
        trained=trained,
        signature=infer_signature(
            example, pd.DataFrame({"fraud_probability": [0.5] * len(example)})
        ),
        input_example=example,
    )
