"""A search's record in MLflow: a parent run with the best parameters, the test metrics, the
plots and the input importance, one nested run per trial (and one for the final data-parallel
fit, its validation metrics per epoch), and the model logged with it."""

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from ml.tuning import TuningResult


@dataclass(frozen=True)
class LoggedSearch:
    run_id: str
    model_uri: str
    plots: dict[str, bytes]  # PNG files by name


def splits(rows: "pd.DataFrame") -> dict[str, "pd.DataFrame"]:
    """The train, validation and test splits, each in a set order (Delta files come back in
    none: the same data and seed then give the same model); ValueError when one cannot be
    trained on or measured."""
    from ml.train import check_trainable

    order = [key for key in ("event_timestamp", "transaction_id") if key in rows.columns]
    rows = rows.sort_values(order, ignore_index=True, kind="stable")
    found = {name: rows[rows["split"] == name] for name in ("train", "validation", "test")}
    for name, split in found.items():
        check_trainable(split["label"], name)
    return found


def plots(labels, scores, folder: Path) -> dict[str, Path]:
    """A precision-recall curve and the confusion matrix at the alert budget, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay

    paths = {"pr_curve": folder / "pr_curve.png", "confusion_matrix": folder / "confusion.png"}
    figure, axis = plt.subplots(figsize=(5, 4))
    PrecisionRecallDisplay.from_predictions(labels, scores, ax=axis, name="fraud-detector")
    axis.set_title("Out-of-time test: precision vs recall")
    figure.savefig(paths["pr_curve"], dpi=80, bbox_inches="tight")
    plt.close(figure)
    threshold = np.quantile(scores, 0.995)  # the top 0.5% are alerted
    figure, axis = plt.subplots(figsize=(4, 4))
    ConfusionMatrixDisplay.from_predictions(labels, scores >= threshold, ax=axis, colorbar=False)
    axis.set_title("Alerts at the 0.5% budget")
    figure.savefig(paths["confusion_matrix"], dpi=80, bbox_inches="tight")
    plt.close(figure)
    return paths


def log_search(
    experiment_id: str,
    run_name: str,
    tags: dict[str, str],
    result: "TuningResult",
    test: "pd.DataFrame",
    test_scores,
    test_metrics: dict[str, float],
    importance: dict[str, float],
) -> LoggedSearch:
    """The search in MLflow (parent run `run_name`, a nested run per trial) and its best model,
    with its plots on the test split (`test_scores`)."""
    import mlflow

    from ml.importance import IMPORTANCE_FILE
    from ml.packaging import log_model
    from ml.tuning import REPORTED

    with tempfile.TemporaryDirectory() as folder:
        files = plots(test["label"], test_scores, Path(folder))
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as parent:
            for trial in result.trials:
                with mlflow.start_run(
                    experiment_id=experiment_id,
                    run_name=f"trial-{trial['trial_id']}",
                    nested=True,
                    tags={"device": str(trial["device"]), "gpu_ids": trial["gpu_ids"] or "none"},
                ):
                    mlflow.log_params(trial["params"])
                    mlflow.log_metrics({f"validation_{k}": v for k, v in trial["metrics"].items()})
            if result.final_fit:
                with mlflow.start_run(
                    experiment_id=experiment_id, run_name="final-fit", nested=True,
                    tags={"engine": "ray_train", "resumed_from_epochs":
                          ",".join(map(str, result.final_fit.resumed_from)) or "none"},
                ):  # fmt: skip
                    workers = result.final_fit.history[0]["workers"]
                    mlflow.log_params({**result.best_params, "workers": workers})
                    for epoch in result.final_fit.history:
                        mlflow.log_metrics(
                            {f"validation_{k}": epoch[k] for k in REPORTED if k in epoch},
                            step=int(epoch["epoch"]),
                        )
            mlflow.log_params(result.best_params)
            mlflow.set_tag("final_fit", "ray_train" if result.final_fit else "best_trial")
            absent = result.best_model.preprocessor.absent_fields
            mlflow.set_tag("absent_fields", ", ".join(absent) or "none")
            mlflow.log_metrics({f"test_{k}": float(v) for k, v in test_metrics.items()})
            for path in files.values():
                mlflow.log_artifact(str(path), artifact_path="plots")
            mlflow.log_dict(importance, IMPORTANCE_FILE)
            model = log_model(result.best_model, test)
        images = {name: path.read_bytes() for name, path in files.items()}
    return LoggedSearch(parent.info.run_id, model.model_uri, images)
