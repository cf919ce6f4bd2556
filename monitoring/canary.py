"""The canary's verdict: a new champion decides a share of batches beside the previous one (the
stable version) during its rollout; on the prediction log's rows since the rollout began, it
is compared with the stable version on error rate, p99 model latency and the distribution of
its scores. The traffic is split at random, so both see the same mix of transactions."""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class CanaryPolicy:
    min_rows: int = 500  # canary-answered rows before the rollout may complete
    min_minutes: float = 10.0  # and time, so that a slow drift of its scores can show
    max_error_rate: float = 0.01  # canary batches the stable version had to answer
    max_latency_ratio: float = 2.0  # canary p99 model time over the stable version's
    latency_slack_ms: float = 5.0  # below this p99, latency is not judged
    max_score_shift: float = 0.25  # two-sample Kolmogorov-Smirnov statistic of the scores
    min_rows_to_judge: int = 100  # of each, before a verdict on latency or scores


@dataclass(frozen=True)
class CanaryVerdict:
    action: str  # wait | complete | rollback
    reasons: list[str]
    figures: dict[str, float]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def judge_canary(
    rows: pa.Table, canary: str, minutes: float, policy: CanaryPolicy
) -> CanaryVerdict:
    """The verdict on `canary` from the log rows of its rollout (`route`, `model_version`,
    `error`, `model_ms`, `score`), `minutes` after it began."""
    from scipy.stats import ks_2samp  # not at import: the definitions load this module

    route = rows["route"]
    routed = rows.filter(pc.equal(route, "canary"))
    failed = routed.filter(pc.is_valid(routed["error"]))
    answered = routed.filter(pc.and_(pc.is_null(routed["error"]),
                                     pc.equal(routed["model_version"], canary)))  # fmt: skip
    stable = rows.filter(pc.equal(route, "stable"))
    error_rate = failed.num_rows / routed.num_rows if routed.num_rows else 0.0
    figures = {
        "canary_rows": routed.num_rows,
        "stable_rows": stable.num_rows,
        "canary_error_rate": round(error_rate, 4),
        "minutes": round(minutes, 1),
    }
    reasons = []
    if routed.num_rows >= policy.min_rows_to_judge and error_rate > policy.max_error_rate:
        reasons.append(f"error rate {error_rate:.1%} > {policy.max_error_rate:.1%} "
                       f"({failed.num_rows} of {routed.num_rows} rows)")  # fmt: skip
    judged = min(answered.num_rows, stable.num_rows) >= policy.min_rows_to_judge
    if judged:
        canary_p99, stable_p99 = (_p99(t["model_ms"]) for t in (answered, stable))
        figures |= {"canary_p99_model_ms": round(canary_p99, 3),
                    "stable_p99_model_ms": round(stable_p99, 3)}  # fmt: skip
        allowed = max(policy.max_latency_ratio * stable_p99, policy.latency_slack_ms)
        if canary_p99 > allowed:
            reasons.append(f"p99 model time {canary_p99:.1f} ms > {allowed:.1f} ms "
                           f"(stable {stable_p99:.1f} ms)")  # fmt: skip
        shift = ks_2samp(_numbers(answered["score"]), _numbers(stable["score"])).statistic
        figures["score_shift_ks"] = round(shift, 4)
        if shift > policy.max_score_shift:
            reasons.append(f"scores shifted: Kolmogorov-Smirnov {shift:.2f} > "
                           f"{policy.max_score_shift}")  # fmt: skip
    if reasons:
        return CanaryVerdict("rollback", reasons, figures)
    if routed.num_rows < policy.min_rows or minutes < policy.min_minutes or not judged:
        wanted = f"{policy.min_rows} canary rows and {policy.min_minutes:g} minutes"
        return CanaryVerdict("wait", [f"{routed.num_rows} rows in {minutes:.0f} min of {wanted}"],
                             figures)  # fmt: skip
    return CanaryVerdict("complete", ["not worse than the stable version"], figures)


def _numbers(values: pa.ChunkedArray) -> np.ndarray:
    return values.to_numpy(zero_copy_only=False)


def _p99(values: pa.ChunkedArray) -> float:
    return float(np.percentile(_numbers(values), 99))
