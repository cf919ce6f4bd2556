"""The promotion gate, without Dagster: the challenger against the incumbent (the champion, or a
gradient-boosting baseline for the first model) on the same test rows, its serving checks
(latency, account takeovers), the verdict's wording and the registry's aliases."""

import datetime as dt
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from ml.registry import MODEL_NAME, input_columns, set_alias, version_by_alias
from ml.rollout import start_canary

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class GatePolicy:
    """What the gate asks of a challenger: on the same test rows (recent rows of held-out cards)
    it is not worse than the incumbent with `confidence`, and it scores within a latency budget
    (the defaults of the champion asset's config)."""

    # How far below the incumbent the lower confidence bound of the difference may be. Not 0:
    # a model trained on fresher data may tie the champion, and a tie should not keep it. PR-AUC
    # on labels known so far is a guard against a clearly worse ranking, not the decider: both
    # models rank nearly every fraud on top, and which of those frauds are reported yet (some
    # never are) moves it by up to ±0.06 between models equally good on the truth, where recall
    # at 1% FPR follows the truth (bench/RESULTS.md).
    pr_auc_tolerance: float = 0.1
    recall_tolerance: float = 0.05  # recall at 1% FPR
    min_frauds: int = 30  # fewer labelled frauds in the test split: no verdict, no promotion
    # A segment (ml.segments) with this many frauds is compared too: the challenger may not be
    # worse there beyond the tolerances with `confidence`. Fewer: shown, not judged.
    min_segment_frauds: int = 30
    confidence: float = 0.95
    resamples: int = 2000
    latency_budget_ms: float = 250.0  # scoring 1,000 rows on CPU
    # Share of the test set's usual purchases whose account-takeover variant (same customer,
    # five times the amount, a new device, a new foreign country) must score higher.
    min_takeover_share: float = 0.9


@dataclass(frozen=True)
class GateResult:
    """The gate's figures on one challenger, and whether it passed."""

    intervals: dict  # metric -> ml.comparison.PairedMetric
    frauds: int
    rows: int
    weighted: bool  # labels weighted by the training set's `weight` (reports still arriving)
    status: str  # ml.comparison.GateVerdict.status
    passed: bool
    reasons: list[str]  # why it did not pass
    latency_ms: float
    takeover_share: float
    takeover_checked: int
    segments: list[dict] = field(default_factory=list)  # per segment: rows, frauds, figures
    # Shown, not judged: metric -> (incumbent, challenger), e.g. ROC AUC, Card Precision@100.
    reported: dict[str, tuple[float, float]] = field(default_factory=dict)

    def worse_segments(self) -> list[str]:
        return [f"{r['dimension']}={r['segment']}" for r in self.segments if r["worse"]]

    def figures(self) -> dict[str, float]:
        """Each metric's incumbent, challenger, difference and bounds, flat."""
        return {
            f"{metric}_{name}": value
            for metric, paired in self.intervals.items()
            for name, value in asdict(paired).items()
        }

    def description(self, version: str, incumbent_name: str, confidence: float) -> str:
        """The verdict in one sentence, as the gate's check shows it."""
        if self.passed and self.status == "not shown worse":
            return (
                f"v{version} is not shown worse than {incumbent_name} (no champion serving; its "
                f"{confidence:.0%} intervals reach 0)"
            )
        if self.passed:
            return (
                f"v{version} is {self.status} than {incumbent_name} with {confidence:.0%} "
                "confidence"
            )
        reasons = "; ".join(self.reasons)
        return f"v{version} not promoted ({self.status} vs {incumbent_name}): {reasons}"


class Unloadable(RuntimeError):
    """A model of the comparison could not be loaded: it cannot take part."""


def load_pair(challenger, incumbent):
    """The pyfuncs of the challenger's and the incumbent's registry versions (the incumbent
    None when there is none); Unloadable, naming which, when one fails to load."""
    import mlflow

    loaded = []
    for role, version in (("challenger", challenger), ("champion", incumbent)):
        if version is None:
            loaded.append(None)
            continue
        try:
            loaded.append(mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version.version}"))
        except Exception as error:  # whatever breaks a model
            raise Unloadable(f"could not load {role} v{version.version}: {error}") from error
    return tuple(loaded)


def scores_of(model, rows: "pd.DataFrame"):
    """The pyfunc's fraud probabilities for training-set rows (only its input columns)."""
    return model.predict(rows[input_columns(model)])["fraud_probability"].to_numpy()


def latency_ms(model, rows: "pd.DataFrame") -> float:
    """Median wall time of scoring 1,000 rows, of five calls after one warm-up."""
    batch = rows[input_columns(model)].sample(n=1000, replace=len(rows) < 1000, random_state=0)
    model.predict(batch)
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        model.predict(batch)
        timings.append((time.perf_counter() - started) * 1000)
    return sorted(timings)[2]


def serving_reasons(latency: float, takeover_share: float, policy: GatePolicy) -> list[str]:
    """The reasons besides quality the challenger may not be promoted: too slow, or misjudging
    account takeovers. A NaN takeover share (no usual purchase to perturb) is not a reason."""
    reasons = []
    if latency > policy.latency_budget_ms:
        reasons.append(f"1,000-row batch {latency:.0f} ms > budget {policy.latency_budget_ms} ms")
    if takeover_share < policy.min_takeover_share:
        reasons.append(
            f"takeover variants scored higher for {takeover_share:.1%} of usual purchases "
            f"< {policy.min_takeover_share:.0%}"
        )
    return reasons


def judge(
    intervals: dict,
    frauds: int,
    latency: float,
    takeover_share: float,
    policy: GatePolicy,
    replacing: bool = True,
    segment_reasons: list[str] = (),
) -> tuple[str, bool, list[str]]:
    """The gate's verdict from its figures: (status, passed, why not). The comparison's verdict
    (`ml.comparison.decide` at the policy's tolerances), then the segments and serving checks."""
    from ml.comparison import decide

    verdict = decide(intervals, tolerances(policy), frauds, policy.min_frauds, replacing=replacing)
    reasons = (
        verdict.reasons + list(segment_reasons) + serving_reasons(latency, takeover_share, policy)
    )
    return verdict.status, verdict.promote and not reasons, reasons


def shadow_reasons(days: list[tuple[str, dict]], policy: GatePolicy) -> tuple[list[str], str]:
    """The live evidence of a challenger that ran in shadow beside the champion: per day of
    `monitoring/shadow_comparison` (day, its labelled figures: frauds, and per metric the
    champion, challenger and bounds of the difference), the same verdict as the gate's on
    its test split. (why the evidence refuses the challenger, a table of the days); a day with
    fewer than `min_frauds` labelled frauds is shown, not judged."""
    from ml.comparison import METRICS, PairedMetric, decide

    reasons, lines = [], []
    for day, labelled in days:
        intervals = {m: PairedMetric(**labelled[m]) for m in METRICS if m in labelled}
        verdict = decide(intervals, tolerances(policy), labelled["frauds"], policy.min_frauds)
        judged = verdict.status != "not enough evidence"
        if judged and not verdict.promote:
            reasons += [f"in shadow on {day}: {reason}" for reason in verdict.reasons]
        figures = "; ".join(
            f"{m} {p.difference:+.4f} [{p.low:+.4f}, {p.high:+.4f}]" for m, p in intervals.items()
        )
        shown = verdict.status if judged else "not judged: too few frauds"
        lines.append(f"| {day} | {labelled['frauds']} | {figures} | {shown} |")
    table = "| day | frauds | challenger − champion | verdict |\n|---|---|---|---|\n"
    return reasons, table + "\n".join(lines)


def tolerances(policy: GatePolicy) -> dict[str, float]:
    return {"pr_auc": policy.pr_auc_tolerance, "recall_at_1pct_fpr": policy.recall_tolerance}


def compare_segments(
    test: "pd.DataFrame",
    history: "pd.DataFrame",
    labels,
    incumbent_scores,
    challenger_scores,
    policy: GatePolicy,
) -> tuple[list[dict], list[str]]:
    """Per segment of the test rows: its figures, and a reason to refuse when the challenger is
    worse there beyond a tolerance with the policy's confidence (its upper bound below
    −tolerance); a segment with fewer than `min_segment_frauds` frauds is shown, not judged."""
    import numpy as np

    from ml.comparison import METRICS, paired_bootstrap
    from ml.segments import each_segment, segments

    labels = np.asarray(labels)
    cards = test["card_id"].to_numpy()
    limits = tolerances(policy)
    table, reasons = [], []
    for segment in each_segment(labels, segments(test, history)):
        row = {"dimension": segment.dimension, "segment": segment.name,
               "rows": len(segment.rows), "frauds": segment.frauds}  # fmt: skip
        if segment.frauds < policy.min_segment_frauds:
            table.append({**row, "figures": "too few frauds to judge", "worse": False})
            continue
        at = segment.rows
        intervals = paired_bootstrap(
            labels[at], incumbent_scores[at], challenger_scores[at], clusters=cards[at],
            resamples=policy.resamples, confidence=policy.confidence,
        )  # fmt: skip
        worse = [m for m, p in intervals.items() if p.high < -limits[m]]
        figures = "; ".join(
            f"{METRICS[m]} {p.difference:+.3f} [{p.low:+.3f}, {p.high:+.3f}]"
            for m, p in intervals.items()
        )
        table.append({**row, "figures": figures, "worse": bool(worse)})
        reasons += [
            f"worse in {segment.dimension} = {segment.name}: {METRICS[m]} "
            f"{intervals[m].difference:+.3f}, upper bound {intervals[m].high:+.3f} "
            f"< −{limits[m]:g}"
            for m in worse
        ]
    return table, reasons


def evaluate(
    challenger, incumbent, train: "pd.DataFrame", test: "pd.DataFrame", policy: GatePolicy
) -> GateResult:
    """The gate on the test split: the paired bootstrap by card (labels weighted as training
    weights them), the non-inferiority verdict, then latency and account takeovers. `incumbent`
    None: the baseline trained on `train` stands in."""
    import pandas as pd

    from ml.baseline import baseline_scores
    from ml.behaviour import most_foreign_country, takeover_scores_higher
    from ml.comparison import paired_bootstrap
    from ml.metrics import reported_figures
    from ml.train import row_weights

    challenger_scores = scores_of(challenger, test)
    incumbent_scores = (
        scores_of(incumbent, test) if incumbent is not None else baseline_scores(train, test)
    )
    frauds = int((test["label"] == 1).sum())
    labels = test["label"].to_numpy() * row_weights(test)  # an early report stands for unreported
    intervals = paired_bootstrap(
        labels,
        incumbent_scores,
        challenger_scores,
        clusters=test["card_id"].to_numpy(),
        resamples=policy.resamples,
        confidence=policy.confidence,
    )
    history = pd.concat([train, test])
    both = [reported_figures(test, scores) for scores in (incumbent_scores, challenger_scores)]
    reported = {metric: (both[0][metric], both[1][metric]) for metric in both[0]}
    segment_rows, segment_reasons = compare_segments(
        test, history, labels, incumbent_scores, challenger_scores, policy
    )
    latency = latency_ms(challenger, test)
    takeover_share, takeover_checked = takeover_scores_higher(
        lambda rows: scores_of(challenger, rows), test, most_foreign_country(train)
    )
    status, passed, reasons = judge(
        intervals, frauds, latency, takeover_share, policy, replacing=incumbent is not None,
        segment_reasons=segment_reasons,
    )  # fmt: skip
    return GateResult(
        intervals=intervals,
        frauds=frauds,
        rows=len(test),
        weighted="weight" in test,
        status=status,
        passed=passed,
        reasons=reasons,
        latency_ms=latency,
        takeover_share=takeover_share,
        takeover_checked=takeover_checked,
        segments=segment_rows,
        reported=reported,
    )


def comparison_table(
    intervals: dict, incumbent_name: str, confidence: float, reported: dict | None = None
) -> str:
    """The paired comparison as a markdown table; `reported` metrics (shown, not judged) below
    it without intervals."""
    from ml.comparison import METRICS
    from ml.metrics import REPORTED

    lines = [
        f"| metric | {incumbent_name} | challenger | difference | one-sided {confidence:.0%} "
        "bounds |",
        "|---|---|---|---|---|",
    ]
    for metric, paired in intervals.items():
        lines.append(
            f"| {METRICS[metric]} | {paired.champion:.4f} | {paired.challenger:.4f} | "
            f"{paired.difference:+.4f} | [{paired.low:+.4f}, {paired.high:+.4f}] |"
        )
    for metric, (before, after) in (reported or {}).items():
        name = f"{REPORTED[metric]} (shown, not judged)"
        lines.append(f"| {name} | {before:.4f} | {after:.4f} | {after - before:+.4f} | |")
    return "\n".join(lines)


def log_to_run(client, version, result: GateResult) -> None:
    """The gate's figures on the challenger's MLflow run."""
    from mlflow.entities import Metric, RunTag

    run_id = version.run_id or version.tags.get("mlflow_run_id")
    if not run_id:
        return
    now = int(time.time() * 1000)
    figures = {"gate_frauds": result.frauds}
    for metric, paired in result.intervals.items():
        figures |= {
            f"gate_{metric}_delta": paired.difference,
            f"gate_{metric}_delta_low": paired.low,
            f"gate_{metric}_delta_high": paired.high,
        }
    client.log_batch(
        run_id,
        metrics=[Metric(name, float(value), now, 0) for name, value in figures.items()],
        tags=[RunTag("gate_status", result.status)],
    )


def promote(client, version: str) -> str | None:
    """Move `champion` to `version`; the former champion keeps `previous`. Returns it."""
    current = version_by_alias("champion")
    former = current.version if current else None
    if former is not None and former != version:
        set_alias("previous", former, client)
    set_alias("champion", version, client)
    return former


def roll_out(client, version: str, canary_share: float) -> tuple[str | None, str]:
    """Promote `version` (see `promote`); below a share of 1, and with a former champion to fall
    back on, it first decides that share of traffic as a canary. (the former champion, how the
    rollout goes)"""
    former = promote(client, version)
    if former in (None, version) or canary_share >= 1:
        return former, "full traffic"
    start_canary(client, version, canary_share, dt.datetime.now(dt.UTC))
    return former, f"canary: {canary_share:.0%} of batches until the canary sensor decides"
