"""The shadow against the model that decided, on the same transactions of a day (the prediction
log's `shadow` rows paired with the decided rows by transaction): agreement of decisions,
correlation of scores, model time, and, once labels have matured, both models' metrics on the
same labelled transactions with paired bootstrap intervals (`ml.comparison`)."""

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

DECIDED_PATHS = ("online", "stream")
LOG_COLUMNS = ["transaction_id", "path", "model_version", "score", "decision", "model_ms"]


@dataclass(frozen=True)
class ShadowComparison:
    decided_version: str
    shadow_version: str
    pairs: int
    decision_agreement: float  # share of pairs with the same decision
    flagged_decided: float  # share sent to review or declined
    flagged_shadow: float
    score_pearson: float
    score_spearman: float
    mean_abs_score_difference: float
    decided_p99_model_ms: float
    shadow_p99_model_ms: float
    labelled: dict | None = None  # frauds, rows, and per metric both models and the interval

    def figures(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "labelled"}


def paired_scores(log: pa.Table) -> pd.DataFrame:
    """One row per transaction scored by both a deciding model and a shadow: the decided
    model's `version`, `score`, `decision`, `model_ms`, and the same with `shadow_` in front."""
    frame = log.select(LOG_COLUMNS).to_pandas()
    decided = frame[frame["path"].isin(DECIDED_PATHS)].drop_duplicates("transaction_id")
    shadow = frame[frame["path"] == "shadow"].drop_duplicates("transaction_id")
    shadow = shadow.drop(columns="path").add_prefix("shadow_")
    paired = decided.drop(columns="path").merge(
        shadow, left_on="transaction_id", right_on="shadow_transaction_id"
    )
    versions = {"model_version": "version", "shadow_model_version": "shadow_version"}
    return paired.drop(columns="shadow_transaction_id").rename(columns=versions)


def compare(
    paired: pd.DataFrame, labels: pd.DataFrame | None = None, confidence: float = 0.95
) -> list[ShadowComparison]:
    """A comparison per (decided version, shadow version) of `paired_scores`; `labels`
    (`transaction_id`, `label`, `card_id`) of matured transactions adds both models' metrics."""
    from ml.comparison import paired_bootstrap

    found = []
    for (version, shadow), group in paired.groupby(["version", "shadow_version"]):
        flagged, shadow_flagged = (group[c] != "approve" for c in ("decision", "shadow_decision"))
        gap = (group["score"] - group["shadow_score"]).abs()
        labelled = None
        if labels is not None:
            known = group.merge(labels, on="transaction_id")
            if known["label"].nunique() == 2:
                intervals = paired_bootstrap(
                    known["label"].to_numpy(), known["score"].to_numpy(),
                    known["shadow_score"].to_numpy(), clusters=known["card_id"].to_numpy(),
                    confidence=confidence,
                )  # fmt: skip
                labelled = {"frauds": int(known["label"].sum()), "rows": len(known),
                            **{m: asdict(i) for m, i in intervals.items()}}  # fmt: skip
        found.append(
            ShadowComparison(
                decided_version=str(version),
                shadow_version=str(shadow),
                pairs=len(group),
                decision_agreement=float((group["decision"] == group["shadow_decision"]).mean()),
                flagged_decided=float(flagged.mean()),
                flagged_shadow=float(shadow_flagged.mean()),
                score_pearson=_correlation(group["score"], group["shadow_score"], "pearson"),
                score_spearman=_correlation(group["score"], group["shadow_score"], "spearman"),
                mean_abs_score_difference=float(gap.mean()),
                decided_p99_model_ms=_p99(group["model_ms"]),
                shadow_p99_model_ms=_p99(group["shadow_model_ms"]),
                labelled=labelled,
            )
        )
    return found


def _correlation(a: pd.Series, b: pd.Series, method: str) -> float:
    """NaN when either side is constant (no correlation to speak of)."""
    if a.nunique() < 2 or b.nunique() < 2:
        return float("nan")
    return float(a.corr(b, method=method))


def _p99(values: pd.Series) -> float:
    known = values.dropna()
    return float(np.percentile(known, 99)) if len(known) else float("nan")


def shadow_rows_filter() -> pc.Expression:
    """The log rows a comparison reads: the deciding paths and the shadow."""
    return pc.field("path").isin([*DECIDED_PATHS, "shadow"])
