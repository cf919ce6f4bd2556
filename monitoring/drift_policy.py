"""When a day's monitoring raises a drift alarm: on what matters to the model, not on how many
columns moved. Four signals, each with its threshold:

- input drift weighted by importance: the importance shares (`ml.importance`) of the inputs whose
  Evidently drift test failed, summed; a drifted input the model ignores counts for little. One
  day at the threshold raises the alarm, or `sustained_days` running at a lower one (a single
  day of noise reaches it, a drift stays);
- broad input drift: the share of inputs whose drift test failed, importance aside. Far above
  what a day without drift shows, it means the population moved (a merchant mix, a new channel)
  even where today's model reads little of it: its alert volume moves with it, and a retrain,
  judged by the gate, is how to find out whether a model of the new mix does better;
- prediction drift: Evidently's drift score of the model's scores against the reference's;
- missed frauds so far: of the cards with a fraud reported by the day's end among the last
  `label_window_days` of transactions, how many the champion let through (every score under the
  review threshold), against how many it let through in its reference window: Fisher's exact
  test, one-sided. Report delays do not bias it: a fraud's delay does not depend on its score.
  Disputes of the cardholder's own purchases (`first_party_reason_codes`) are left out on both
  sides: no transaction model sees them coming, and they would set a floor of "missed" cards
  that hides a new pattern the champion lets through."""

from dataclasses import dataclass, field

import numpy as np

# The policy in words, as the drift report shows it in the UI.
POLICY_TEXT = (
    "The day is compared with the same weekday of the champion's reference window. "
    "An alarm when any signal crosses its threshold (monitoring resource): the importance shares "
    "of the inputs whose Evidently drift test failed, summed (`weighted_drift`; or the lower "
    "`sustained_drift_threshold` on `sustained_days` reported days running); the share of "
    "inputs whose test failed, importance aside (`drift_share`); the Wasserstein "
    "distance of the day's scores from the reference's, in reference standard deviations "
    "(`prediction_drift`); and the cards with a fraud reported by the day's end among the label "
    "window's transactions that the champion let through, against its reference window (Fisher's "
    "exact test, one-sided, `missed_fraud_p_value`; first-party disputes left out)."
)


@dataclass(frozen=True)
class DriftPolicy:
    weighted_drift_threshold: float = 0.25
    # Days without drift in the loop benchmark stayed at or under 0.18 (bench/RESULTS.md).
    sustained_drift_threshold: float = 0.15
    sustained_days: int = 2
    # Days without drift in the loop benchmark: at most 7% of inputs drifted (bench/RESULTS.md).
    drift_share_threshold: float = 0.25
    # Days without drift in the loop benchmark moved the scores by up to 0.09 (bench/RESULTS.md).
    prediction_drift_threshold: float = 0.2
    missed_fraud_alpha: float = 0.001
    label_window_days: int = 7
    review_threshold: float = 0.5
    first_party_reason_codes: tuple[str, ...] = ("not_recognised",)


@dataclass(frozen=True)
class MissedFrauds:
    """Cards with a reported fraud in the label window and how many of them scored under the
    review threshold; the same counts in the champion's reference window."""

    cards: int
    missed: int
    reference_cards: int
    reference_missed: int

    @property
    def reference_share(self) -> float:
        return self.reference_missed / self.reference_cards if self.reference_cards else 0.0

    def p_value(self) -> float:
        """How likely this many missed cards are if the champion misses as in its reference:
        Fisher's exact test, one-sided (the reference's own counts are a sample too, so a
        reference that missed none does not make one miss today a certainty). 1 without cards
        on either side."""
        from scipy.stats import fisher_exact

        if self.cards == 0 or self.reference_cards == 0:
            return 1.0
        table = [
            [self.missed, self.cards - self.missed],
            [self.reference_missed, self.reference_cards - self.reference_missed],
        ]
        return float(fisher_exact(table, alternative="greater").pvalue)


@dataclass(frozen=True)
class Verdict:
    alarm: bool
    reasons: list[str] = field(default_factory=list)  # the signals that crossed
    figures: dict = field(default_factory=dict)  # every signal with its threshold, for the UI


def weighted_drift(drifted: dict[str, bool], importance: dict[str, float]) -> float:
    """The importance shares of the drifted inputs, summed (0 to 1)."""
    return float(sum(importance.get(column, 0.0) for column, hit in drifted.items() if hit))


def missed_frauds(
    cards: np.ndarray, labels: np.ndarray, scores: np.ndarray, review_threshold: float
) -> tuple[int, int]:
    """(cards with a fraud, those whose every fraud scored under `review_threshold`)."""
    fraud = labels == 1
    if not fraud.any():
        return 0, 0
    fraud_cards, index = np.unique(cards[fraud], return_inverse=True)
    best = np.full(len(fraud_cards), -np.inf)
    np.maximum.at(best, index, scores[fraud])
    return len(fraud_cards), int((best < review_threshold).sum())


def sustained(drift: float, earlier: list[float], policy: DriftPolicy) -> bool:
    """Whether the weighted drift reached the sustained threshold on this day and on each of
    the `sustained_days` − 1 days before it (`earlier`, newest last; a day not reported is
    missing, and then it did not)."""
    days = [*earlier[max(0, len(earlier) - policy.sustained_days + 1) :], drift]
    return len(days) == policy.sustained_days and min(days) >= policy.sustained_drift_threshold


def judge(
    drift: float,
    prediction_drift: float,
    missed: MissedFrauds | None,
    policy: DriftPolicy,
    earlier_drift: tuple[float, ...] = (),
    *,
    drift_share: float,
) -> Verdict:
    """The day's verdict: an alarm when any signal crosses its threshold. `earlier_drift`: the
    weighted drift of the days just before, newest last, as far as they were reported;
    `drift_share`: the share of inputs that drifted."""
    reasons = []
    if drift >= policy.weighted_drift_threshold:
        reasons.append(
            f"importance-weighted input drift {drift:.2f} >= {policy.weighted_drift_threshold}"
        )
    elif sustained(drift, list(earlier_drift), policy):
        running = ", ".join(f"{d:.2f}" for d in [*earlier_drift, drift][-policy.sustained_days :])
        reasons.append(
            f"importance-weighted input drift {running} >= {policy.sustained_drift_threshold} "
            f"on {policy.sustained_days} days running"
        )
    if drift_share >= policy.drift_share_threshold:
        reasons.append(f"{drift_share:.0%} of inputs drifted >= {policy.drift_share_threshold:.0%}")
    if prediction_drift >= policy.prediction_drift_threshold:
        reasons.append(
            f"prediction drift {prediction_drift:.3f} >= {policy.prediction_drift_threshold}"
        )
    figures = {
        "weighted_drift": round(drift, 4),
        "weighted_drift_threshold": policy.weighted_drift_threshold,
        "sustained_drift_threshold": policy.sustained_drift_threshold,
        "sustained_days": policy.sustained_days,
        "drift_share": round(drift_share, 4),
        "drift_share_threshold": policy.drift_share_threshold,
        "prediction_drift": round(prediction_drift, 4),
        "prediction_drift_threshold": policy.prediction_drift_threshold,
    }
    if missed is not None:
        p = missed.p_value()
        figures |= {
            "fraud_cards_reported": missed.cards,
            "fraud_cards_missed": missed.missed,
            "reference_fraud_cards": missed.reference_cards,
            "reference_missed_share": round(missed.reference_share, 4),
            "missed_fraud_p_value": p,
            "missed_fraud_alpha": policy.missed_fraud_alpha,
        }
        if p < policy.missed_fraud_alpha:
            reasons.append(
                f"{missed.missed} of {missed.cards} reported fraud cards missed (reference "
                f"{missed.reference_missed} of {missed.reference_cards}, p={p:.1e} < "
                f"{policy.missed_fraud_alpha})"
            )
    return Verdict(alarm=bool(reasons), reasons=reasons, figures=figures)
