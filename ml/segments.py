"""Segments a model may be worse in while its overall figures hold: channel, merchant category,
amount band, the customer's age on the network, new or known device. A segment's figures need
enough frauds; with fewer, it is shown as such and decides nothing."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

# USD, right-inclusive: (10, 50] is "10-50".
AMOUNT_BANDS = (
    [-np.inf, 10, 50, 200, 1000, np.inf],
    ["≤10", "10-50", "50-200", "200-1000", ">1000"],
)
AGE_BANDS = ([-1, 29, 89, np.inf], ["<30 days", "30-89 days", "90+ days"])
DIMENSIONS = ("channel", "merchant_category", "amount_band", "customer_age", "device")


def segments(rows: pd.DataFrame, history: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each row's segment per dimension (a dimension whose fields the rows lack, or whose field
    has no value at all, is left out). The customer's age counts days since the customer's
    first transaction in `history` (the rows themselves by default); a device is new on the
    customer's first transaction from it there."""
    history = rows if history is None else history
    out = pd.DataFrame(index=rows.index)
    for field in ("channel", "merchant_category"):
        if _has(rows, field):
            out[field] = rows[field].fillna("unknown").astype(str)
    if _has(rows, "amount_usd"):
        out["amount_band"] = _bands(rows["amount_usd"], AMOUNT_BANDS)
    if _has(rows, "customer_id", "event_timestamp"):
        first_day = pd.to_datetime(history.groupby("customer_id")["event_timestamp"].min())
        age = pd.to_datetime(rows["event_timestamp"]) - rows["customer_id"].map(first_day)
        out["customer_age"] = _bands(age.dt.days, AGE_BANDS)
    if _has(rows, "customer_id", "event_timestamp", "device_id"):
        pairs = ["customer_id", "device_id"]
        first_use = history.dropna(subset=["device_id"]).groupby(pairs)["event_timestamp"].min()
        first = pd.MultiIndex.from_frame(rows[pairs]).map(first_use.to_dict().get)
        new = pd.to_datetime(rows["event_timestamp"]).to_numpy() == pd.to_datetime(first).to_numpy()
        out["device"] = np.where(rows["device_id"].isna(), "none", np.where(new, "new", "known"))
    return out


def _has(rows: pd.DataFrame, *fields: str) -> bool:
    return all(f in rows and rows[f].notna().any() for f in fields)


def _bands(values: pd.Series, bands: tuple[list, list[str]]) -> pd.Series:
    edges, labels = bands
    return pd.cut(values, edges, labels=labels).astype(str)


@dataclass(frozen=True)
class Segment:
    dimension: str
    name: str
    rows: np.ndarray  # positions in the rows segmented
    frauds: int


def each_segment(labels: np.ndarray, by: pd.DataFrame):
    """Every (dimension, segment) with its rows' positions and frauds."""
    for dimension in by.columns:
        for name, positions in by.groupby(dimension, sort=True).indices.items():
            yield Segment(dimension, str(name), positions, int((labels[positions] > 0).sum()))


def segment_table(rows: list[dict]) -> str:
    """Per-segment figures (dicts with dimension, segment, rows, frauds and a `figures` text) as
    a markdown table."""
    lines = ["| dimension | segment | rows | frauds | figures |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['dimension']} | {r['segment']} | {r['rows']:,} | {r['frauds']:,} | {r['figures']} |"
        for r in rows
    ]
    return "\n".join(lines)


def performance_by_segment(
    rows: pd.DataFrame, labels, scores, min_frauds: int, history: pd.DataFrame | None = None
) -> list[dict]:
    """One model's PR-AUC and recall at 1% FPR per segment of `rows`; a segment with fewer
    than `min_frauds` frauds (or none legitimate) is shown as too few to measure."""
    from ml.metrics import fraud_metrics

    labels, scores = np.asarray(labels), np.asarray(scores)
    table = []
    for segment in each_segment(labels, segments(rows, history)):
        at = segment.rows
        row = {"dimension": segment.dimension, "segment": segment.name,
               "rows": len(at), "frauds": segment.frauds}  # fmt: skip
        if segment.frauds < min_frauds or segment.frauds == len(at):
            table.append({**row, "figures": "too few frauds to measure"})
            continue
        metrics = fraud_metrics(labels[at], scores[at])
        figures = (
            f"PR-AUC {metrics['pr_auc']:.3f}; recall at 1% FPR {metrics['recall_at_1pct_fpr']:.3f}"
        )
        table.append({**row, "figures": figures})
    return table
