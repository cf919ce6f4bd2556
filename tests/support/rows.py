"""Synthetic training rows: fraud is a large amount in electronics, online; their training day."""

import datetime as dt

import numpy as np
import pandas as pd

TRAINING_SET_DAY = dt.date(2026, 3, 1)


def synthetic_rows(n: int, seed: int = 0) -> pd.DataFrame:
    """Synthetic scored rows of cards (four rows each): fraud is a large amount in electronics,
    online."""
    rng = np.random.default_rng(seed)
    category = rng.choice(["grocery", "electronics", "travel"], n)
    channel = rng.choice(["pos", "online"], n)
    amount = rng.lognormal(3, 1, n)
    fraud = (category == "electronics") & (channel == "online") & (amount > 40)
    return pd.DataFrame(
        {
            "amount_usd": amount,
            "merchant_category": category,
            "merchant_country": rng.choice(["US", "FR"], n),
            "channel": channel,
            "customer_daily__txn_count_30d": rng.integers(0, 50, n).astype(float),
            "customer_daily__missing": rng.random(n) < 0.1,
            "card_id": [f"K{i // 4:05d}" for i in range(n)],
            "label": fraud.astype(int),
        }
    )
