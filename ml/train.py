"""Training of the fraud model on a training set's train split, validated on its validation split.
Plain PyTorch: the same code runs in a Ray Tune trial, on CPU or on a GPU."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.preprocessing import Frame, Preprocessor

MIN_ROWS = 200
MIN_POSITIVES = 5


@dataclass(frozen=True)
class TrainParams:
    """Hyper-parameters; Ray Tune searches lr, width, depth, dropout, embedding_dim, batch_size."""

    lr: float = 2e-3
    width: int = 64
    depth: int = 2
    dropout: float = 0.1
    embedding_dim: int = 4
    batch_size: int = 512
    epochs: int = 8
    weight_decay: float = 1e-5
    seed: int = 0
    # Weight of a fraud row in the loss; None: the square root of negatives / positives. Full
    # balance lets a week's few hundred frauds dominate the fit and costs precision at the top.
    pos_weight: float | None = None


@dataclass
class TrainedModel:
    """What training produces: the fitted preprocessing, the network, and per-epoch metrics."""

    preprocessor: Preprocessor
    network: object  # ml.model.FraudNet
    history: list[dict] = field(default_factory=list)

    def score(self, frame: Frame, batch_size: int = 8192) -> np.ndarray:
        """Fraud probability per row (of a DataFrame or a mapping of column arrays), on the
        network's device."""
        import torch

        numeric, categorical = self.preprocessor.transform(frame)
        device = next(self.network.parameters()).device
        self.network.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(numeric), batch_size):
                logits = self.network(
                    torch.from_numpy(numeric[start : start + batch_size]).to(device),
                    torch.from_numpy(categorical[start : start + batch_size]).to(device),
                )
                out.append(torch.sigmoid(logits).cpu().numpy())
        return np.concatenate(out) if out else np.empty(0, dtype=np.float32)


@dataclass
class Resume:
    """Where an interrupted run picks up: its best model so far and how many epochs it had done."""

    model: TrainedModel
    epochs_done: int


def row_weights(rows: pd.DataFrame) -> np.ndarray:
    """Each row's weight in the loss and the metrics: the training set's `weight` column (labels
    still arriving), or 1."""
    if "weight" not in rows:
        return np.ones(len(rows), dtype=np.float32)
    return rows["weight"].to_numpy(dtype=np.float32)


def check_trainable(labels: pd.Series, name: str) -> None:
    """Refuse a split too small, or with one class, to learn or measure anything from."""
    positives = int(labels.sum())
    if len(labels) < MIN_ROWS:
        raise ValueError(f"{name} split has {len(labels)} rows; at least {MIN_ROWS} are needed")
    if positives < MIN_POSITIVES or positives == len(labels):
        raise ValueError(
            f"{name} split has {positives} fraud rows of {len(labels)}: both classes are needed "
            f"(at least {MIN_POSITIVES} fraud rows)"
        )


def train(
    train_rows: pd.DataFrame,
    valid_rows: pd.DataFrame,
    params: TrainParams,
    device: str = "cpu",
    on_epoch: Callable[[int, dict, "TrainedModel"], None] | None = None,
    resume: Resume | None = None,
    preprocessor: Preprocessor | None = None,
    shard: tuple[int, int] = (0, 1),
    wrap: Callable = lambda network: network,
) -> TrainedModel:
    """Fit preprocessing on `train_rows` (unless given one), then the network with class
    weighting (`pos_weight`, by default the square root of negatives / positives, by row weight);
    keep the epoch with the best validation PR-AUC (also weighted). `on_epoch` receives each
    epoch's validation metrics and the model as it stands (a Ray Tune trial reports them, so ASHA
    can stop it, with a checkpoint to resume from). With `resume`, training goes on from that
    model for the epochs left (the optimizer starts afresh).

    Data-parallel (`shard` = (rank, workers), `wrap` the network in DistributedDataParallel):
    this worker trains on its equal share of the rows, in batches of `batch_size / workers`."""
    import torch

    from ml.metrics import fraud_metrics
    from ml.model import FraudNet, ModelConfig

    check_trainable(train_rows["label"], "train")
    check_trainable(valid_rows["label"], "validation")
    torch.manual_seed(params.seed)
    generator = np.random.default_rng(params.seed)
    if resume:
        preprocessor = resume.model.preprocessor
    preprocessor = preprocessor or Preprocessor.fit(train_rows)
    numeric, categorical = (torch.from_numpy(a) for a in preprocessor.transform(train_rows))
    labels = torch.from_numpy(train_rows["label"].to_numpy(dtype=np.float32))
    if resume:
        network = resume.model.network.to(device)
    else:
        config = ModelConfig(
            n_numeric=numeric.shape[1],
            cardinalities=tuple(preprocessor.cardinalities),
            width=params.width,
            depth=params.depth,
            dropout=params.dropout,
            embedding_dim=params.embedding_dim,
        )
        network = FraudNet(config).to(device)
    weights = torch.from_numpy(row_weights(train_rows))
    positives = float((weights * labels).sum())
    pos_weight = params.pos_weight or ((float(weights.sum()) - positives) / positives) ** 0.5
    rank, workers = shard
    if workers > 1:  # equal shares: every worker runs the same number of steps
        mine = torch.arange(rank, len(labels) - len(labels) % workers, workers)
        numeric, categorical, labels, weights = (
            t[mine] for t in (numeric, categorical, labels, weights)
        )
    batch_size = max(1, params.batch_size // workers)
    loss_fn = torch.nn.BCEWithLogitsLoss(
        pos_weight=torch.tensor(pos_weight, device=device),
        reduction="none",
    )
    optimizer = torch.optim.AdamW(
        network.parameters(), lr=params.lr, weight_decay=params.weight_decay
    )
    model = TrainedModel(preprocessor, network)
    trained = wrap(network)

    def validation(model: TrainedModel) -> dict:
        return fraud_metrics(
            valid_rows["label"], model.score(valid_rows), weights=row_weights(valid_rows)
        )

    best_score, best_state, first_epoch = -1.0, None, 0
    if resume:
        best_score = validation(model)["pr_auc"]
        best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
        first_epoch = resume.epochs_done
    for epoch in range(first_epoch, params.epochs):
        started = time.perf_counter()
        trained.train()
        order = torch.from_numpy(generator.permutation(len(labels)))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad()
            per_row = loss_fn(
                trained(numeric[batch].to(device), categorical[batch].to(device)),
                labels[batch].to(device),
            )
            batch_weights = weights[batch].to(device)
            loss = (per_row * batch_weights).sum() / batch_weights.sum()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch}")
            loss.backward()
            optimizer.step()
        train_seconds = time.perf_counter() - started
        metrics = validation(model)
        metrics |= {
            "epoch": epoch,
            "train_loss": float(loss.item()),
            "train_seconds": train_seconds,
        }
        model.history.append(metrics)
        if metrics["pr_auc"] > best_score:
            best_score = metrics["pr_auc"]
            best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
        if on_epoch is not None:
            on_epoch(epoch, metrics, model)
    network.load_state_dict(best_state)
    return model
