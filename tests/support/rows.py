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


def prediction_log_rows(*ids: str):
    """Prediction-log rows (one model input, `amount_usd`) for the transaction ids `ids`."""
    import pyarrow as pa

    from serving.prediction_log import COLUMNS

    schema = COLUMNS.append(pa.field("features", pa.struct([("amount_usd", pa.float64())])))
    stamp = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    return pa.Table.from_pylist(
        [{"transaction_id": i, "event_timestamp": stamp, "day": stamp.date(),
          "scored_at": stamp, "path": "online", "model_version": "1", "score": 0.5,
          "decision": "review", "reasons": [], "degraded": False,
          "features": {"amount_usd": 1.0}}
         for i in ids],
        schema=schema,
    )  # fmt: skip
