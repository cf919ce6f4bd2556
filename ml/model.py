"""The fraud model: an MLP over standardized numeric inputs and embedded categorical inputs."""

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the network; tuned by Ray Tune (width, depth, dropout, embedding size)."""

    n_numeric: int
    cardinalities: tuple[int, ...]
    width: int = 64
    depth: int = 2
    dropout: float = 0.1
    embedding_dim: int = 4

    def to_dict(self) -> dict:
        return {**asdict(self), "cardinalities": list(self.cardinalities)}

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        return cls(**{**data, "cardinalities": tuple(data["cardinalities"])})


class FraudNet(nn.Module):
    """Logit of fraud for a batch of (numeric [n, n_numeric], categorical codes [n, k])."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embeddings = nn.ModuleList(
            nn.Embedding(cardinality, config.embedding_dim) for cardinality in config.cardinalities
        )
        layers: list[nn.Module] = []
        width_in = config.n_numeric + config.embedding_dim * len(config.cardinalities)
        for _ in range(config.depth):
            layers += [nn.Linear(width_in, config.width), nn.ReLU(), nn.Dropout(config.dropout)]
            width_in = config.width
        layers.append(nn.Linear(width_in, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        embedded = [embedding(categorical[:, i]) for i, embedding in enumerate(self.embeddings)]
        return self.mlp(torch.cat([numeric, *embedded], dim=1)).squeeze(1)
