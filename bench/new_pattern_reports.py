"""How many reports of a new fraud pattern a retrain can learn from: for each seed, the
`new_fraud_pattern` bust-outs of the loop benchmark's drifted days (`bench.loop.Scale`) reported by
the retrain's cut-off (the end of the last drifted day), and how many of them fall on cards that
train for each held-out share of cards (`lakehouse.training.card_buckets`); the training set
leaves out rows too young for `min_reported_share`, so a report of the last days may not train
even on such a card. The simulator alone,
no pipeline: `python -m bench.new_pattern_reports [--seeds 30] [--held-out 0.55 0.4]`."""

import argparse

import numpy as np


def reported_cards(seed: int, scale) -> list[str]:
    """The cards of the bust-outs of the drifted days reported by the retrain's cut-off."""
    from bench.loop import START
    from simulator.network import MS_PER_DAY, PATTERN_CODE, PaymentNetwork, day_start_ms
    from simulator.population import card_id

    drift_day = scale.train_days + scale.watched
    cutoff_day = drift_day + scale.drift
    cutoff_ms = day_start_ms(START) + cutoff_day * MS_PER_DAY
    network = PaymentNetwork(scale.customers, seed, START, scenario="new_fraud_pattern",
                             drift_day=drift_day)  # fmt: skip
    cards = []
    for index, sim in enumerate(network.days(cutoff_day)):
        if index < drift_day:
            continue
        reports = sim.chargebacks
        known = (reports.pattern == PATTERN_CODE["bust_out"]) & (reports.reported_ms < cutoff_ms)
        cards += card_id(sim.transactions.card[reports.transaction_index[known]]).tolist()
    return cards


def main(argv: list[str] | None = None) -> int:
    from bench.loop import Scale
    from lakehouse.training import card_buckets

    prog = "python -m bench.new_pattern_reports"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--held-out", type=float, nargs="+", default=[0.55, 0.4])
    args = parser.parse_args(argv)
    scale = Scale()
    found = {seed: reported_cards(seed, scale) for seed in range(1, args.seeds + 1)}
    counts = [len(cards) for cards in found.values()]
    print(f"{scale}; bust-outs reported by the retrain's cut-off, seeds 1-{args.seeds}:")
    print("  per seed:", " ".join(map(str, counts)))
    print(f"  median {np.median(counts):.0f}, range {min(counts)}-{max(counts)}")
    for held_out in args.held_out:
        trained = [
            int((card_buckets(np.array(cards, dtype=object)) >= held_out).sum()) if cards else 0
            for cards in found.values()
        ]
        none = sum(n == 0 for n in trained)
        print(f"  {held_out:.0%} of cards held out: none on a training card in {none} of "
              f"{len(trained)} seeds; per seed: {' '.join(map(str, trained))}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
