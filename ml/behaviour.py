"""Behavioural expectations of a fraud model, checked on perturbed copies of real rows: the same
customer, the same moment, one story changed."""

from collections.abc import Callable

import numpy as np
import pandas as pd

# The views that say whether a device or a country is familiar to the customer.
FAMILIARITY_VIEWS = ("customer_device", "customer_country")


def usual_purchases(rows: pd.DataFrame) -> pd.DataFrame:
    """Legitimate rows of known customers, from a device and in a country each customer has
    used before, for no more than their 30-day average; none if the rows lack those features."""
    needed = {"label", "amount_usd", "customer_daily__missing", "customer_daily__amount_avg_30d"}
    needed |= {f"{view}__missing" for view in FAMILIARITY_VIEWS}
    if not needed <= set(rows.columns):
        return rows.iloc[0:0]
    known = ~rows["customer_daily__missing"]
    for view in FAMILIARITY_VIEWS:
        known &= ~rows[f"{view}__missing"]
    usual = rows["amount_usd"] <= rows["customer_daily__amount_avg_30d"]
    return rows[(rows["label"] == 0) & known & usual]


def takeover_variants(
    rows: pd.DataFrame, foreign_country: str, amount_factor: float = 5.0
) -> pd.DataFrame:
    """Each row as an account takeover would make it: `amount_factor` times the amount, from a
    device new to the customer, at a merchant in `foreign_country`, new to the customer. A new
    pair has no familiarity values: the defaults (0) and the `__missing` flag, as a lookup
    returns them."""
    out = rows.assign(amount_usd=rows["amount_usd"] * amount_factor)
    out["merchant_country"] = foreign_country
    for view in FAMILIARITY_VIEWS:
        values = [c for c in out if c.startswith(f"{view}__") and c != f"{view}__missing"]
        out[values] = 0
        out[f"{view}__missing"] = True
    return out


def takeover_scores_higher(
    score: Callable[[pd.DataFrame], np.ndarray], rows: pd.DataFrame, foreign_country: str
) -> tuple[float, int]:
    """(share of usual purchases whose takeover variant scores higher, purchases checked)."""
    usual = usual_purchases(rows)
    usual = usual[usual["merchant_country"] != foreign_country]
    if usual.empty:
        return float("nan"), 0
    higher = score(takeover_variants(usual, foreign_country)) > score(usual)
    return float(np.mean(higher)), len(usual)


def most_foreign_country(rows: pd.DataFrame) -> str:
    """The merchant country most common among fraud rows that were new to their customer."""
    if "customer_country__missing" not in rows:
        return str(rows["merchant_country"].value_counts().idxmax())
    frauds = rows[(rows["label"] == 1) & rows["customer_country__missing"]]
    pool = frauds if len(frauds) else rows
    return str(pool["merchant_country"].value_counts().idxmax())
