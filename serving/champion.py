"""The champion as serving holds it: the registry's MLflow model copied into BentoML's model store
(tag `fraud-detector:v<registry version>`), so a bento carries it and needs no registry."""

import json
from pathlib import Path

from ml.registry import MODEL_NAME

BENTO_MODEL = MODEL_NAME  # the same name in BentoML's store
MLFLOW_DIR = "mlflow_model"  # the MLflow model's files inside the BentoML model


def bento_tag(version: str) -> str:
    return f"{BENTO_MODEL}:v{version}"


def export_champion(alias: str = "champion") -> tuple[str, bool]:
    """(tag, created): the registry's version holding `alias` in the BentoML model store; a
    version already there is left as it is (a rebuild for the same version adds nothing)."""
    import bentoml
    import mlflow
    from bentoml.exceptions import NotFound

    from ml.registry import version_by_alias
    from ml.thresholds import thresholds_from_tags

    version = version_by_alias(alias)
    if version is None:
        raise LookupError(f"no version of {MODEL_NAME} holds alias {alias!r}: nothing to serve")
    tag = bento_tag(version.version)
    try:
        bentoml.models.get(tag)
        return tag, False
    except NotFound:
        pass
    with bentoml.models.create(
        tag,
        labels={"registry_version": str(version.version), "alias": alias},
        metadata={
            "model_uri": f"models:/{MODEL_NAME}/{version.version}",
            "mlflow_run_id": version.run_id,
        },
    ) as model:
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{MODEL_NAME}/{version.version}",
            dst_path=str(Path(model.path) / MLFLOW_DIR),
        )
        (Path(model.path) / "registry.json").write_text(
            json.dumps(
                {
                    "name": MODEL_NAME,
                    "version": str(version.version),
                    "thresholds": thresholds_from_tags(version.tags),
                }
            )
        )
    return tag, True


def load_stored(path: str):
    """(pyfunc model, registry version) of a BentoML model made by `export_champion`."""
    import mlflow.pyfunc

    registry = json.loads((Path(path) / "registry.json").read_text())
    return mlflow.pyfunc.load_model(str(Path(path) / MLFLOW_DIR)), registry["version"]


def stored_thresholds(path: str) -> tuple[float, float] | None:
    """(review, decline) chosen from costs for the version in a BentoML model, if it has them."""
    chosen = json.loads((Path(path) / "registry.json").read_text()).get("thresholds")
    return tuple(chosen) if chosen else None
