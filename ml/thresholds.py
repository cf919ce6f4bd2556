"""Review and decline thresholds from costs: a fraud let through loses its amount, a review costs
an analyst's time, a declined good customer costs a share of the amount (the sale, the
goodwill); the analysts can look at so many transactions a day. The pair with the least
expected cost within that budget, on scored rows whose labels are known."""

from dataclasses import asdict, dataclass

import numpy as np

CANDIDATES = 400  # score quantiles (scores of rows) tried as thresholds
NEVER = 1.0  # a threshold no score reaches in practice (a sigmoid saturates below it)


@dataclass(frozen=True)
class CostModel:
    review_cost: float = 5.0  # per transaction an analyst looks at, in USD
    false_decline_share: float = 0.1  # of a good transaction's amount, when it is declined
    reviews_per_day: float = 200.0  # what the team can handle


@dataclass(frozen=True)
class ThresholdChoice:
    """The thresholds and what they are expected to cost and catch per day."""

    review: float
    decline: float
    cost_per_day: float
    reviews_per_day: float
    declines_per_day: float
    fraud_amount_stopped: float  # share of the frauds' amount reviewed or declined
    cost_per_day_approving_all: float  # the reference: no model

    def tags(self) -> dict[str, str]:
        """As MLflow tags on a model version (serving reads `review_threshold` and
        `decline_threshold`)."""
        return {
            "review_threshold": f"{self.review:.6f}",
            "decline_threshold": f"{self.decline:.6f}",
            "expected_cost_per_day": f"{self.cost_per_day:.2f}",
            "expected_reviews_per_day": f"{self.reviews_per_day:.1f}",
        }

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def thresholds_from_tags(tags: dict) -> tuple[float, float] | None:
    """(review, decline) from a model version's tags; None when it has none."""
    if "review_threshold" not in tags or "decline_threshold" not in tags:
        return None
    return float(tags["review_threshold"]), float(tags["decline_threshold"])


def choose_thresholds(
    labels, scores, amounts, days: int, costs: CostModel = CostModel(), weights=None
) -> ThresholdChoice:
    """The (review, decline) pair, review <= decline, of least expected cost per day over
    `days` days of rows, with at most `costs.reviews_per_day` reviews a day. `weights`: the
    frauds a labelled fraud stands for (reports still arriving), as the training set's."""
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    amounts = np.asarray(amounts, dtype=np.float64)
    frauds = labels * (np.ones_like(labels) if weights is None else np.asarray(weights))
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    # Sums over the k highest-scored rows, k = 0 .. n.
    fraud_amount = np.concatenate([[0.0], np.cumsum((frauds * amounts)[order])])
    good_amount = np.concatenate([[0.0], np.cumsum(((1 - labels) * amounts)[order])])
    candidates = np.unique(
        np.quantile(scores, np.linspace(0, 1, CANDIDATES), method="inverted_cdf")
    )
    thresholds = np.concatenate([candidates, [NEVER]])
    # Rows at or above each threshold (ranked is descending: count of ranked >= t).
    above = np.searchsorted(-ranked, -thresholds, side="right")
    review_k, decline_k = above[:, None], above[None, :]  # rows: review, columns: decline
    reviews = (review_k - decline_k) / days
    cost = (
        fraud_amount[-1]
        - fraud_amount[review_k]
        + costs.review_cost * (review_k - decline_k)
        + costs.false_decline_share * good_amount[decline_k]
    ) / days
    allowed = (thresholds[:, None] <= thresholds[None, :]) & (reviews <= costs.reviews_per_day)
    cost = np.where(allowed, cost, np.inf)
    r, d = np.unravel_index(np.argmin(cost), cost.shape)
    total_fraud = fraud_amount[-1]
    return ThresholdChoice(
        review=float(thresholds[r]),
        decline=float(thresholds[d]),
        cost_per_day=float(cost[r, d]),
        reviews_per_day=float(reviews[r, d]),
        declines_per_day=float(above[d] / days),
        fraud_amount_stopped=float(fraud_amount[above[r]] / total_fraud) if total_fraud else 0.0,
        cost_per_day_approving_all=float(total_fraud / days),
    )
