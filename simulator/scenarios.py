"""Drift scenarios: how the network changes from a given day on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DayEffects:
    """Multipliers and switches applied to one simulated day."""

    amount_factor: float = 1.0
    online_shift: float = 0.0  # share of purchases moved to online categories
    bust_out_rate: float = 0.0  # bust-out frauds per legitimate transaction


SCENARIOS: tuple[str, ...] = (
    "baseline",
    "amount_inflation",
    "new_fraud_pattern",
    "merchant_mix_shift",
)


def effects_for_day(scenario: str, day_index: int, drift_day: int) -> DayEffects:
    """Effects of `scenario` on day `day_index` (0-based); drift starts at `drift_day`."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    if scenario == "baseline" or day_index < drift_day:
        return DayEffects()
    days_in = day_index - drift_day
    if scenario == "amount_inflation":
        return DayEffects(amount_factor=1.4 + 0.01 * days_in)
    if scenario == "new_fraud_pattern":
        return DayEffects(bust_out_rate=0.004)
    return DayEffects(online_shift=0.35)
