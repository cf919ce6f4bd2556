"""The registered model as MLflow stores it: a pyfunc whose artifact is the PyTorch network with
its fitted preprocessing. MLflow's PyTorch flavor casts its input frame to float32, so it could
not take the string categoricals; this flavor takes the scoring rows as they are."""

import json
from pathlib import Path

import mlflow.pyfunc
import pandas as pd

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


class FraudDetector(mlflow.pyfunc.PythonModel):
    """predict(rows) -> a frame with `fraud_probability`, one row per scoring row."""

    def load_context(self, context):
        self._model = load_bundle(Path(context.artifacts["bundle"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return pd.DataFrame({"fraud_probability": self._model.score(model_input)})


def log_model(trained, example: pd.DataFrame, workdir: Path) -> "mlflow.models.model.ModelInfo":
    """Log `trained` in the active MLflow run as `model`, with signature and input example."""
    import mlflow
    import torch
    from mlflow.models import infer_signature

    bundle = save_bundle(trained, workdir / "bundle")
    columns = [*trained.preprocessor.numeric, *trained.preprocessor.categorical]
    example = example.reindex(columns=columns).head(5)
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=FraudDetector(),
        artifacts={"bundle": str(bundle)},
        code_paths=[str(Path(__file__).parent)],
        signature=infer_signature(
            example, pd.DataFrame({"fraud_probability": [0.5] * len(example)})
        ),
        input_example=example,
        pip_requirements=[
            f"torch=={torch.__version__}",
            f"mlflow=={mlflow.__version__}",
            f"pandas=={pd.__version__}",
        ],
    )
