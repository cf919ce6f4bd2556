"""Hyper-parameter search with Ray Tune: ASHA stops weak trials early; each trial is
`ml.train.train` on the trial's device (a GPU share when the cluster has GPUs, else CPU)."""

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ml.train import TrainedModel, TrainParams

if TYPE_CHECKING:
    from ml.data_parallel import DataParallelFit

METRIC = "pr_auc"
TUNED = ("lr", "width", "depth", "dropout", "embedding_dim", "batch_size")
REPORTED = ("pr_auc", "recall_at_1pct_fpr", "precision_at_budget", "brier")


def search_space() -> dict:
    from ray import tune

    return {
        "lr": tune.loguniform(3e-4, 1e-2),
        "width": tune.choice([32, 64, 128]),
        "depth": tune.choice([1, 2, 3]),
        "dropout": tune.uniform(0.0, 0.3),
        "embedding_dim": tune.choice([2, 4, 8]),
        "batch_size": tune.choice([256, 512, 1024]),
    }


@dataclass
class TuningResult:
    """The best trial's model and parameters, and every trial's parameters and final metrics."""

    best_model: TrainedModel
    best_params: dict
    best_metrics: dict
    trials: list[dict] = field(default_factory=list)
    resumed: bool = False
    final_fit: "DataParallelFit | None" = None  # the best parameters fitted again, if they were


def _trial(config: dict, train_rows: pd.DataFrame, valid_rows: pd.DataFrame, epochs: int) -> None:
    """One Ray Tune trial: train, reporting validation metrics each epoch and a checkpoint when
    the trial improves. A trial restored after an interruption goes on from its checkpoint."""
    import json

    import ray
    import torch
    from ray import tune

    from ml.packaging import load_bundle, save_bundle
    from ml.train import Resume, train

    device = "cuda" if torch.cuda.is_available() else "cpu"
    # The GPUs Ray gave this trial (a share of one when gpus_per_trial < 1), for the record.
    placement = {"device": device, "gpu_ids": ",".join(map(str, ray.get_gpu_ids()))}
    params = TrainParams(**{k: config[k] for k in TUNED}, epochs=epochs, seed=config["seed"])
    resume = None
    if checkpoint := tune.get_checkpoint():
        with checkpoint.as_directory() as folder:
            done = json.loads((Path(folder) / "progress.json").read_text())["epochs_done"]
            resume = Resume(load_bundle(Path(folder)), epochs_done=done)

    best = -1.0

    def report(epoch: int, metrics: dict, model: TrainedModel) -> None:
        # A checkpoint only when the trial improves: the best epoch is all that is ever restored.
        nonlocal best
        if metrics[METRIC] <= best:
            tune.report({**metrics, **placement})
            return
        best = metrics[METRIC]
        with tempfile.TemporaryDirectory() as folder:
            save_bundle(model, Path(folder))
            (Path(folder) / "progress.json").write_text(json.dumps({"epochs_done": epoch + 1}))
            tune.report({**metrics, **placement}, checkpoint=tune.Checkpoint.from_directory(folder))

    train(train_rows, valid_rows, params, device=device, on_epoch=report, resume=resume)


def tune_model(
    train_rows: pd.DataFrame,
    valid_rows: pd.DataFrame,
    *,
    storage: Path,
    name: str,
    num_samples: int,
    max_epochs: int,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    seed: int = 0,
    early_stopping: bool = True,
    max_concurrent: int = 0,
) -> TuningResult:
    """Run (or resume, if `storage/name` holds an unfinished experiment) the search. Ray must be
    initialized by the caller (local, or a cluster through RAY_ADDRESS). Without
    `early_stopping` every trial runs all epochs (FIFO); `max_concurrent` 0 lets Ray decide."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from ml.packaging import load_bundle

    trainable = tune.with_resources(
        tune.with_parameters(
            _trial, train_rows=train_rows, valid_rows=valid_rows, epochs=max_epochs
        ),
        {"cpu": cpus_per_trial, "gpu": gpus_per_trial},
    )
    path = storage / name
    resumed = tune.Tuner.can_restore(str(path))
    if resumed:
        tuner = tune.Tuner.restore(str(path), trainable=trainable, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space={**search_space(), "seed": seed},
            tune_config=tune.TuneConfig(
                metric=METRIC,
                mode="max",
                num_samples=num_samples,
                scheduler=(
                    ASHAScheduler(max_t=max_epochs, grace_period=min(2, max_epochs))
                    if early_stopping
                    else FIFOScheduler()
                ),
                max_concurrent_trials=max_concurrent or None,
                reuse_actors=True,
                search_alg=tune.search.BasicVariantGenerator(random_state=seed),
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=str(storage),
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=1, checkpoint_score_attribute=METRIC, checkpoint_score_order="max"
                ),
                verbose=0,
            ),
        )
    grid = tuner.fit()
    errors = [r.error for r in grid if r.error]
    if len(errors) == len(grid):
        raise RuntimeError(f"every trial failed; the first: {errors[0]}")
    best = grid.get_best_result(metric=METRIC, mode="max", scope="all")
    checkpoint = best.get_best_checkpoint(metric=METRIC, mode="max")
    with checkpoint.as_directory() as folder:
        model = load_bundle(Path(folder))
    best_row = best.metrics_dataframe.sort_values(METRIC).iloc[-1].to_dict()
    return TuningResult(
        best_model=model,
        best_params={k: best.config[k] for k in TUNED},
        best_metrics={
            k: best_row[k]
            for k in best.metrics
            if isinstance(best.metrics[k], int | float) and k in best_row
        },
        trials=[
            {
                "trial_id": r.metrics.get("trial_id"),
                "params": {k: r.config[k] for k in TUNED},
                "metrics": {k: r.metrics[k] for k in REPORTED if k in r.metrics},
                "epochs": int(r.metrics.get("training_iteration", 0)),
                "device": r.metrics.get("device"),
                "gpu_ids": r.metrics.get("gpu_ids"),
                "error": str(r.error) if r.error else None,
            }
            for r in grid
        ],
        resumed=resumed,
    )


def refit_data_parallel(
    result: TuningResult,
    train_rows: pd.DataFrame,
    valid_rows: pd.DataFrame,
    *,
    epochs: int,
    seed: int,
    storage: Path,
    name: str,
    workers: int,
    use_gpu: bool = False,
) -> TuningResult:
    """The search's result with its best parameters fitted again for `epochs` epochs by Ray
    Train's data-parallel workers (`ml.data_parallel`): that fit's model is the result's."""
    from ml.data_parallel import fit_data_parallel

    params = TrainParams(**result.best_params, epochs=epochs, seed=seed)
    fit = fit_data_parallel(
        train_rows, valid_rows, params, storage=storage, name=name, workers=workers,
        use_gpu=use_gpu,
    )  # fmt: skip
    return replace(result, best_model=fit.model, final_fit=fit)
