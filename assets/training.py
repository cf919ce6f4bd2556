"""Training: Ray Tune over the training set, tracked in MLflow with its lineage."""

import datetime as dt
import subprocess
import tempfile
import time
from pathlib import Path

import dagster as dg

from assets import keys
from assets.metadata import latest_metadata
from assets.training_set import SERVICE
from lakehouse.delta import ALL_DAYS
from resources.k8s import TRAINING_POD
from resources.lakehouse import LakehouseResource
from resources.mlflow import MlflowResource
from resources.ray import RayResource
from settings.env import REPO_ROOT, fraud_home


class TuningConfig(dg.Config):
    """The search: trials, epochs per trial (ASHA stops weak ones earlier), resources per trial."""

    num_samples: int = 6
    max_epochs: int = 8
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.5  # used only when the Ray cluster has GPUs
    seed: int = 0


def _git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def _plots(labels, scores, folder: Path) -> dict[str, Path]:
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


def _image(path: Path) -> dg.MetadataValue:
    import base64

    encoded = base64.b64encode(path.read_bytes()).decode()
    return dg.MetadataValue.md(f"![{path.stem}](data:image/png;base64,{encoded})")


@dg.asset(
    key=keys.TUNED_MODEL,
    group_name="training",
    deps=[keys.TRAINING_SET],
    kinds={"ray", "pytorch", "mlflow"},
    op_tags=TRAINING_POD,
)
def tuned_model(
    context: dg.AssetExecutionContext,
    config: TuningConfig,
    lakehouse: LakehouseResource,
    ray: RayResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    """Ray Tune search over the model on the training set; the best trial logged in MLflow."""
    import mlflow as mlflow_client

    from ml.importance import IMPORTANCE_FILE, permutation_importance
    from ml.metrics import fraud_metrics
    from ml.packaging import log_model
    from ml.train import check_trainable, row_weights
    from ml.tuning import tune_model

    started = time.perf_counter()
    version = lakehouse.version("features", "training_set")
    rows = lakehouse.read("features", "training_set", *ALL_DAYS).to_pandas()
    # Delta files come back in no set order: sorted, the same data and seed give the same model.
    order = [key for key in ("event_timestamp", "transaction_id") if key in rows.columns]
    rows = rows.sort_values(order, ignore_index=True, kind="stable")
    splits = {name: rows[rows["split"] == name] for name in ("train", "validation", "test")}
    for name, split in splits.items():  # refuse before any Ray trial starts or MLflow run opens
        try:
            check_trainable(split["label"], name)
        except ValueError as refused:
            raise dg.Failure(f"training set v{version} cannot be trained on: {refused}") from None
    # One search per training-set state: an interrupted run resumes it, a rebuilt table
    # (version 0 again after a reset) starts a new one.
    search_name = (
        f"training_set_v{version}_{lakehouse.commit_timestamp('features', 'training_set')}"
    )
    with ray.session() as gpus:
        gpus_per_trial = config.gpus_per_trial if gpus else 0.0
        context.log.info(f"Ray: {gpus} GPU(s); {gpus_per_trial} GPU per trial")
        result = tune_model(
            splits["train"], splits["validation"],
            storage=fraud_home() / "ray", name=search_name,
            num_samples=config.num_samples, max_epochs=config.max_epochs,
            cpus_per_trial=config.cpus_per_trial, gpus_per_trial=gpus_per_trial,
            seed=config.seed,
        )  # fmt: skip
    test = splits["test"]
    scores = result.best_model.score(test)
    test_metrics = fraud_metrics(test["label"], scores, weights=row_weights(test))
    valid = splits["validation"]
    importance = permutation_importance(
        result.best_model.score, valid, result.best_model.preprocessor.input_columns,
        weights=row_weights(valid), seed=config.seed,
    )  # fmt: skip
    upstream = latest_metadata(context.instance, keys.TRAINING_SET)
    tags = {
        "training_set_delta_version": str(version),
        "feature_service": SERVICE,
        "label_cutoff": str(upstream.get("label_cutoff", "unknown")),
        "git_commit": _git_commit(),
        "dagster_run_id": context.run.run_id,
    }
    experiment = mlflow.activate()
    with tempfile.TemporaryDirectory() as folder:
        plots = _plots(test["label"], scores, Path(folder))
        with mlflow_client.start_run(
            experiment_id=experiment, run_name=f"tune-v{version}", tags=tags
        ) as parent:
            for trial in result.trials:
                with mlflow_client.start_run(
                    experiment_id=experiment,
                    run_name=f"trial-{trial['trial_id']}",
                    nested=True,
                    tags={"device": str(trial["device"]), "gpu_ids": trial["gpu_ids"] or "none"},
                ):
                    mlflow_client.log_params(trial["params"])
                    mlflow_client.log_metrics(
                        {f"validation_{k}": v for k, v in trial["metrics"].items()}
                    )
            mlflow_client.log_params(result.best_params)
            mlflow_client.log_metrics({f"test_{k}": float(v) for k, v in test_metrics.items()})
            for path in plots.values():
                mlflow_client.log_artifact(str(path), artifact_path="plots")
            mlflow_client.log_dict(importance, IMPORTANCE_FILE)
            model = log_model(result.best_model, test)
        images = {name: _image(path) for name, path in plots.items()}
    return dg.MaterializeResult(
        metadata={
            "mlflow_run_id": parent.info.run_id,
            "model_uri": model.model_uri,
            "training_set_delta_version": version,
            "trials": len(result.trials),
            "trial_devices": sorted({str(t["device"]) for t in result.trials}),
            "gpus_per_trial": gpus_per_trial,
            "resumed_search": result.resumed,
            "search": search_name,
            "best_params": dg.MetadataValue.json(result.best_params),
            "validation_pr_auc": float(result.best_metrics["pr_auc"]),
            "feature_importance": dg.MetadataValue.md(
                "| input | share of the PR-AUC drop when shuffled |\n|---|---|\n"
                + "\n".join(
                    f"| {c} | {v:.3f} |"
                    for c, v in sorted(importance.items(), key=lambda kv: -kv[1])[:12]
                )
            ),
            **{f"test_{k}": float(v) for k, v in test_metrics.items()},
            **images,
            "duration_s": round(time.perf_counter() - started, 1),
            "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
    )
