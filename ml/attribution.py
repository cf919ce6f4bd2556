"""Why a score: integrated gradients (Captum) of the network's fraud logit over its inputs, from a
baseline transaction the model knows nothing about (every input missing, every category
unknown), summed per input column, then per business reason. A reason's share is how far its
inputs moved this transaction's logit above the baseline's; the reasons that moved it most
toward fraud come first."""

from collections.abc import Callable

import numpy as np

from ml.preprocessing import RATIOS, Frame, row_count

MERCHANT_RISK = ("merchant_daily__", "merchant_fraud_reports__")
# Each input column's business reason: the first whose test it passes (`other` if none).
REASON_OF_INPUT: list[tuple[str, Callable[[str], bool]]] = [
    ("new_device", lambda c: c.startswith("customer_device__") or c.endswith("devices_30d")),
    ("new_country", lambda c: c.startswith("customer_country__") or c == "merchant_country"
     or c.endswith("countries_30d")),
    ("amount_above_usual", lambda c: c == "amount_usd" or c in RATIOS
     or c.startswith("customer_daily__amount_")),
    ("card_velocity", lambda c: c.startswith("card_velocity__")),
    ("customer_velocity", lambda c: c.startswith("customer_velocity__")),
    ("customer_fraud_reports", lambda c: c.startswith("customer_daily__fraud_reports")),
    ("merchant_fraud_rate", lambda c: c.startswith(MERCHANT_RISK)),
    ("unknown_customer", lambda c: c.startswith("customer_daily__")),
    ("merchant_category", lambda c: c == "merchant_category"),
    ("channel", lambda c: c == "channel"),
]  # fmt: skip
TOP = 3


def reason_of(column: str) -> str:
    return next((code for code, test in REASON_OF_INPUT if test(column)), "other")


class Explainer:
    """The reasons of a `ml.train.TrainedModel`'s scores, `steps` points along each path
    (Gauss-Legendre: at 8, the reasons' shares sum to the logit's rise within a few percent)."""

    def __init__(self, trained, steps: int = 8):
        import torch

        self.preprocessor, self.network, self.steps = trained.preprocessor, trained.network, steps
        self.reasons = sorted({reason_of(c) for c in self._numeric_columns + self._categorical})
        # per network input position (numeric values, then embedding values): its reason
        numeric = [self.reasons.index(reason_of(c)) for c in self._numeric_columns]
        dims = self.network.config.embedding_dim
        categorical = [
            self.reasons.index(reason_of(c)) for c in self._categorical for _ in range(dims)
        ]
        self._groups = torch.zeros(len(numeric) + len(categorical), len(self.reasons))
        self._groups[torch.arange(len(numeric) + len(categorical)), numeric + categorical] = 1
        empty = {c: np.array([np.nan if c in self.preprocessor.numeric else None], dtype=object)
                 for c in self.preprocessor.input_columns}  # fmt: skip
        self._baseline = self._inputs(empty)

    @property
    def _numeric_columns(self) -> list[str]:
        """The network's numeric values by the column they come from (binned columns repeat)."""
        binned = [name for name, edges in self.preprocessor.bin_edges.items()
                  for _ in range(len(edges) - 1)]  # fmt: skip
        return [*self.preprocessor.numeric, *binned]

    @property
    def _categorical(self) -> list[str]:
        return self.preprocessor.categorical

    def _inputs(self, frame: Frame):
        """(numeric values, embedded categories) as the network's first layer reads them."""
        import torch

        numeric, codes = self.preprocessor.transform(frame)
        codes = torch.from_numpy(codes)
        with torch.no_grad():
            embedded = [layer(codes[:, i]) for i, layer in enumerate(self.network.embeddings)]
        return torch.from_numpy(numeric), torch.cat(embedded, dim=1) if embedded else None

    def _logit(self, numeric, embedded):
        import torch

        parts = [numeric] if embedded is None else [numeric, embedded]
        return self.network.mlp(torch.cat(parts, dim=1)).squeeze(1)

    def contributions(self, frame: Frame) -> np.ndarray:
        """[rows, reasons]: each reason's share of the row's logit above the baseline's."""
        import torch
        from captum.attr import IntegratedGradients

        if row_count(frame) == 0:
            return np.zeros((0, len(self.reasons)), dtype=np.float32)
        numeric, embedded = self._inputs(frame)
        base_numeric, base_embedded = self._baseline
        self.network.eval()
        gradients = IntegratedGradients(self._logit)
        if embedded is None:
            found = [gradients.attribute(numeric, baselines=base_numeric, n_steps=self.steps)]
        else:
            found = gradients.attribute((numeric, embedded), n_steps=self.steps,
                                        baselines=(base_numeric, base_embedded))  # fmt: skip
        return (torch.cat(list(found), dim=1).detach() @ self._groups).numpy()

    def top_reasons(self, frame: Frame, top: int = TOP) -> list[list[str]]:
        """Per row, up to `top` reasons that moved its score toward fraud, the largest first."""
        shares = self.contributions(frame)
        order = np.argsort(-shares, axis=1)[:, :top]
        return [[self.reasons[j] for j in row if shares[i, j] > 0] for i, row in enumerate(order)]
