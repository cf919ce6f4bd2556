"""A data-parallel fit with Ray Train's `TorchTrainer`: `ml.train.train` on every worker, each on
its share of the rows, the gradients averaged by DistributedDataParallel (gloo on CPU, NCCL and a
GPU per worker on a cluster). The fit checkpoints each improving epoch; a failed or killed worker
restarts the group, which goes on from the last checkpoint (the best model so far and the epochs
left), as an interrupted Ray Tune trial does."""

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ml.train import TrainedModel, TrainParams

METRIC = "pr_auc"
PROGRESS = "progress.json"


@dataclass
class DataParallelFit:
    """The fit's best model, every epoch's validation metrics (rank 0's, in order, across
    restarts), the epochs each restart went on from, and where Ray Train kept the run."""

    model: TrainedModel
    history: list[dict] = field(default_factory=list)
    resumed_from: list[int] = field(default_factory=list)
    path: str = ""


def _worker(config: dict) -> None:
    """One worker of the group: its share of `train`. Every epoch, rank 0 checkpoints the best
    model so far with the progress (epochs done, metrics, restarts); after a restart every
    worker goes on from that checkpoint for the epochs left."""
    import shutil

    import ray
    import ray.train
    import ray.train.torch

    from ml.packaging import load_bundle, save_bundle
    from ml.train import Resume, train

    context = ray.train.get_context()
    rank, workers = context.get_world_rank(), context.get_world_size()
    train_rows, valid_rows = ray.get(config["train_rows"]), ray.get(config["valid_rows"])
    resume, progress = None, {"epochs_done": 0, "history": [], "resumed_from": []}
    kept = tempfile.TemporaryDirectory(prefix="best-")  # this worker's best model so far
    best_folder = Path(kept.name)
    if checkpoint := ray.train.get_checkpoint():
        with checkpoint.as_directory() as folder:
            progress = json.loads((Path(folder) / PROGRESS).read_text())
            resume = Resume(load_bundle(Path(folder)), epochs_done=progress["epochs_done"])
            shutil.copytree(folder, best_folder, dirs_exist_ok=True)
        progress["resumed_from"].append(progress["epochs_done"])
    best = max((m[METRIC] for m in progress["history"]), default=-1.0)

    def report(epoch: int, metrics: dict, model: TrainedModel) -> None:
        nonlocal best
        progress["history"].append({**metrics, "workers": workers})
        progress["epochs_done"] = epoch + 1
        if metrics[METRIC] > best:
            best = metrics[METRIC]
            save_bundle(model, best_folder)
        if rank != 0:
            ray.train.report(metrics)  # every worker reports each epoch: it is a barrier
            return
        with tempfile.TemporaryDirectory() as folder:
            shutil.copytree(best_folder, folder, dirs_exist_ok=True)
            (Path(folder) / PROGRESS).write_text(json.dumps(progress))
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))

    with kept:
        train(
            train_rows, valid_rows, config["params"], device=str(ray.train.torch.get_device()),
            on_epoch=report, resume=resume, preprocessor=config["preprocessor"],
            shard=(rank, workers), wrap=ray.train.torch.prepare_model,
        )  # fmt: skip


def fit_data_parallel(
    train_rows: pd.DataFrame,
    valid_rows: pd.DataFrame,
    params: TrainParams,
    *,
    storage: Path,
    name: str,
    workers: int = 2,
    use_gpu: bool = False,
    max_failures: int = 3,
) -> DataParallelFit:
    """Fit `params` on `train_rows` with `workers` data-parallel workers (Ray must be
    initialized by the caller), validated each epoch on `valid_rows`; the best epoch's model.
    Preprocessing is fitted once, here, so that every worker transforms rows alike."""
    import ray
    import ray.train
    from ray.train.torch import TorchTrainer

    from ml.packaging import load_bundle
    from ml.preprocessing import Preprocessor

    trainer = TorchTrainer(
        _worker,
        train_loop_config={
            "train_rows": ray.put(train_rows),
            "valid_rows": ray.put(valid_rows),
            "params": params,
            "preprocessor": Preprocessor.fit(train_rows),
        },
        scaling_config=ray.train.ScalingConfig(num_workers=workers, use_gpu=use_gpu),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=str(storage),
            failure_config=ray.train.FailureConfig(max_failures=max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
        ),
    )
    result = trainer.fit()
    if result.error:
        raise result.error
    with result.checkpoint.as_directory() as folder:
        model = load_bundle(Path(folder))
        progress = json.loads((Path(folder) / PROGRESS).read_text())
    return DataParallelFit(model, progress["history"], progress["resumed_from"], result.path)
