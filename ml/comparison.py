"""Two models compared on the same rows with a paired, cluster-resampled bootstrap, and the
promotion verdict that follows from the intervals (non-inferiority within tolerances)."""

from dataclasses import dataclass

import numpy as np

METRICS = {"pr_auc": "PR-AUC", "recall_at_1pct_fpr": "recall at 1% FPR"}
MAX_FPR = 0.01
BLOCK = 1_000_000  # multiplicities drawn at once (replicates × clusters): ~8 MB, fast to reuse


@dataclass(frozen=True)
class PairedMetric:
    """One metric of both models and the interval of challenger − champion."""

    champion: float
    challenger: float
    difference: float
    low: float
    high: float


@dataclass(frozen=True)
class GateVerdict:
    """Whether the comparison allows promotion, its status, and why not."""

    promote: bool
    # "better", "not worse", "not shown worse" (the first model only), "inconclusive", "worse" or
    # "not enough evidence"
    status: str
    reasons: list[str]


class _Ranking:
    """One model's ranking of the rows, reduced to what both metrics read: recall only grows at
    thresholds (ends of runs of tied scores) that pass a fraud, so the weights are summed per
    cluster into the segments between those thresholds, frauds and legitimate rows apart.

    A label is the frauds a row stands for: 0 or 1, or more for a fraud reported early (its
    inverse-probability weight): the frauds of its age not reported yet lie among the unreported
    rows, at scores like its own (a report's delay does not depend on the score), so it takes
    them off the legitimate rows there (a row of label y counts y frauds and 1 − y legitimate
    transactions). Precision at a threshold is then the estimated frauds among all rows above."""

    def __init__(self, labels, scores, weights, clusters, n_clusters: int):
        from scipy.sparse import csr_matrix

        order = np.argsort(-scores, kind="stable")
        labels, weights, clusters = labels[order], weights[order], clusters[order]
        tie_run = np.r_[0, np.cumsum(np.diff(scores[order]) != 0)]
        # Where recall may grow must not depend on the weights, which each replicate redraws.
        growing = np.flatnonzero(np.bincount(tie_run, weights=labels > 0) > 0)
        self.thresholds = len(growing)
        segment = np.searchsorted(growing, tie_run)  # legitimate rows after the last: one more
        fraud, legitimate = weights * labels, weights * (1 - labels)
        self.sums = csr_matrix(
            (
                np.r_[fraud, legitimate],
                (np.r_[segment, self.thresholds + segment], np.r_[clusters, clusters]),
            ),
            shape=(2 * self.thresholds + 1, n_clusters),
        ).T

    def metrics(self, multiplicity: np.ndarray) -> dict[str, np.ndarray]:
        """Both metrics under each row of `multiplicity` (replicates × clusters)."""
        sums = multiplicity @ self.sums
        gained = sums[:, : self.thresholds]
        tp = np.cumsum(gained, axis=1)
        fp = np.cumsum(sums[:, self.thresholds :], axis=1)
        frauds, legitimate = gained.sum(axis=1), fp[:, -1]
        fp = np.maximum(fp[:, :-1], 0)  # estimated from early reports, it may dip below 0
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
            pr_auc = (gained * precision).sum(axis=1) / frauds
            # A prefix: false positives never fall as more rows are flagged.
            flagged_fp = np.maximum.accumulate(fp, axis=1)
            allowed = (flagged_fp / legitimate[:, None] <= MAX_FPR).sum(axis=1)
            reached = np.c_[np.zeros(len(tp)), tp]  # the curve starts at recall 0
            recall = np.take_along_axis(reached, allowed[:, None], axis=1)[:, 0] / frauds
        return {"pr_auc": pr_auc, "recall_at_1pct_fpr": recall}


def _clusters(n: int, clusters) -> tuple[np.ndarray, int]:
    if clusters is None:
        return np.arange(n), n
    codes = np.unique(np.asarray(clusters), return_inverse=True)[1].ravel()
    return codes, int(codes.max(initial=-1)) + 1


def _rankings(labels, scores: list, weights=None, clusters=None) -> tuple[list[_Ranking], int]:
    labels = np.asarray(labels, dtype=np.float64)
    n = len(labels)
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    codes, n_clusters = _clusters(n, clusters)
    scores = [np.asarray(s, dtype=np.float64) for s in scores]
    if any(len(a) != n for a in (weights, codes, *scores)):
        raise ValueError("labels, scores, weights and clusters need one value per row")
    if not all(np.isfinite(s).all() for s in scores):
        raise ValueError("scores must be finite")
    if not (np.isfinite(labels).all() and (labels >= 0).all()):
        raise ValueError("labels are the frauds each row stands for: finite and not negative")
    return [_Ranking(labels, s, weights, codes, n_clusters) for s in scores], n_clusters


def _observed(labels, scores, weights) -> dict[str, float]:
    [ranking], n = _rankings(labels, [scores], weights)
    return {metric: float(value[0]) for metric, value in ranking.metrics(np.ones((1, n))).items()}


def average_precision(labels, scores, weights=None) -> float:
    """Weighted PR-AUC, as sklearn's `average_precision_score(sample_weight=weights)` for 0/1
    labels; a label above 1 is a fraud reported early, standing for unreported ones."""
    return _observed(labels, scores, weights)["pr_auc"]


def recall_at_fpr(labels, scores, weights=None) -> float:
    """The highest weighted recall of any threshold whose weighted FPR is at most 1%."""
    return _observed(labels, scores, weights)["recall_at_1pct_fpr"]


def paired_bootstrap(
    labels,
    champion_scores,
    challenger_scores,
    weights=None,
    clusters=None,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, PairedMetric]:
    """Per metric, both models on the same rows and the percentile bounds of the difference
    (challenger − champion), each a one-sided `confidence` bound, as the gate's claims are one-
    sided ("not worse", "worse"): together a 1 − 2 (1 − `confidence`) interval. Each replicate
    gives every cluster (every row when `clusters` is None) a Poisson(1) multiplicity shared by
    both models, so a card's rows move together."""
    models, n_clusters = _rankings(labels, [champion_scores, challenger_scores], weights, clusters)
    observed = [m.metrics(np.ones((1, n_clusters))) for m in models]
    rng = np.random.default_rng(seed)
    step = max(1, BLOCK // max(n_clusters, 1))
    differences: dict[str, list[np.ndarray]] = {metric: [] for metric in METRICS}
    for start in range(0, resamples, step):
        multiplicity = rng.poisson(1.0, size=(min(step, resamples - start), n_clusters))
        champion, challenger = (m.metrics(multiplicity) for m in models)
        for metric in METRICS:
            differences[metric].append(challenger[metric] - champion[metric])
    tail = (1 - confidence) * 100
    result = {}
    for metric in METRICS:
        before, after = (float(model[metric][0]) for model in observed)
        replicates = np.concatenate(differences[metric])
        replicates = replicates[np.isfinite(replicates)]  # a replicate that drew no fraud
        low, high = (
            np.percentile(replicates, [tail, 100 - tail]) if len(replicates) else (np.nan, np.nan)
        )
        result[metric] = PairedMetric(before, after, after - before, float(low), float(high))
    return result


def _signed(value: float) -> str:
    return f"{value + 0.0:+.3f}".replace("-", "−")


def decide(
    intervals: dict[str, PairedMetric],
    tolerances: dict[str, float],
    frauds: int,
    min_frauds: int,
    replacing: bool = True,
) -> GateVerdict:
    """The gate's verdict from the paired intervals of challenger − incumbent. Replacing a
    serving champion (`replacing`), the challenger must show it is not worse: every metric's
    lower bound at least −tolerance ("better" when every lower bound is above 0); an interval
    reaching below is "worse" when it lies under 0, else "inconclusive", and keeps the champion.
    With nothing serving (the first model, against a baseline), the challenger is promoted
    unless it is worse with confidence (an upper bound under 0)."""
    if frauds < min_frauds:
        reason = f"{frauds} frauds in the comparison window < {min_frauds} needed"
        return GateVerdict(False, "not enough evidence", [reason])
    worse = [metric for metric, paired in intervals.items() if not paired.high >= 0]
    short = [m for m, paired in intervals.items() if not paired.low >= -tolerances[m]]
    failing = short if replacing else worse  # a NaN bound is no evidence either

    def reason(metric: str) -> str:
        paired = intervals[metric]
        bound = f"below −{tolerances[metric]:g}" if replacing else "below 0"
        return (
            f"{METRICS[metric]} {_signed(paired.difference)} "
            f"[{_signed(paired.low)}, {_signed(paired.high)}] {bound}"
        )

    if failing:
        return GateVerdict(
            False, "worse" if worse else "inconclusive", [reason(m) for m in failing]
        )
    if all(paired.low > 0 for paired in intervals.values()):
        return GateVerdict(True, "better", [])
    if not short:
        return GateVerdict(True, "not worse", [])
    return GateVerdict(True, "not shown worse", [])  # the first model: its interval reaches 0
