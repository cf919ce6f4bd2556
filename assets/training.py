"""Training: Ray Tune over the training set, tracked in MLflow with its lineage."""

import datetime as dt
import subprocess
import time

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
    # The best parameters fitted again by this many Ray Train workers (data-parallel; a GPU
    # each where the cluster has GPUs), whose model is the challenger; 0: the best trial's model.
    final_fit_workers: int = 2


def _git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def _image(name: str, png: bytes) -> dg.MetadataValue:
    import base64

    encoded = base64.b64encode(png).decode()
    return dg.MetadataValue.md(f"![{name}](data:image/png;base64,{encoded})")


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
    from ml.importance import permutation_importance
    from ml.metrics import fraud_metrics, reported_figures
    from ml.tracking import log_search, splits
    from ml.train import row_weights
    from ml.tuning import refit_data_parallel, tune_model

    started = time.perf_counter()
    version = lakehouse.version("features", "training_set")
    try:  # refused before any Ray trial starts or MLflow run opens
        split = splits(lakehouse.read("features", "training_set", *ALL_DAYS).to_pandas())
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
            split["train"], split["validation"],
            storage=fraud_home() / "ray", name=search_name,
            num_samples=config.num_samples, max_epochs=config.max_epochs,
            cpus_per_trial=config.cpus_per_trial, gpus_per_trial=gpus_per_trial,
            seed=config.seed,
        )  # fmt: skip
        if config.final_fit_workers:
            context.log.info(f"final fit: {config.final_fit_workers} Ray Train workers")
            result = refit_data_parallel(
                result, split["train"], split["validation"],
                epochs=config.max_epochs, seed=config.seed, storage=fraud_home() / "ray",
                name=f"{search_name}_final_fit", workers=config.final_fit_workers,
                use_gpu=gpus > 0,
            )  # fmt: skip
    test, valid = split["test"], split["validation"]
    scores = result.best_model.score(test)
    test_metrics = fraud_metrics(test["label"], scores, weights=row_weights(test))
    test_metrics["card_precision_at_100"] = reported_figures(test, scores)["card_precision_at_100"]
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
    logged = log_search(
        mlflow.activate(), f"tune-v{version}", tags, result, test, scores, test_metrics, importance
    )
    return dg.MaterializeResult(
        metadata={
            "mlflow_run_id": logged.run_id,
            "model_uri": logged.model_uri,
            "training_set_delta_version": version,
            "trials": len(result.trials),
            "trial_devices": sorted({str(t["device"]) for t in result.trials}),
            "gpus_per_trial": gpus_per_trial,
            "resumed_search": result.resumed,
            "final_fit": (
                f"Ray Train, {config.final_fit_workers} workers"
                if result.final_fit
                else "the best trial's model"
            ),
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
            **{name: _image(name, png) for name, png in logged.plots.items()},
            "duration_s": round(time.perf_counter() - started, 1),
            "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
    )
