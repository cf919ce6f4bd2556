"""The behavioural probe: which rows count as usual purchases, and what a takeover changes."""

import numpy as np
import pandas as pd
import pytest

from ml.behaviour import takeover_scores_higher, takeover_variants, usual_purchases

pytestmark = pytest.mark.unit


def _rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": [0, 0, 1, 0, 0],
            "amount_usd": [20.0, 20.0, 20.0, 90.0, 20.0],
            "merchant_country": ["FR", "FR", "FR", "FR", "FR"],
            "customer_daily__amount_avg_30d": [30.0] * 5,
            "customer_daily__missing": [False] * 5,
            "customer_device__txn_count_30d": [4, 4, 4, 4, 0],
            "customer_device__missing": [False, False, False, False, True],
            "customer_country__txn_count_30d": [9] * 5,
            "customer_country__missing": [False] * 5,
        }
    )


def test_usual_purchases_are_legitimate_familiar_and_not_above_the_average():
    # row 2 is a fraud, row 3 is three times the average, row 4 is from a new device
    assert usual_purchases(_rows()).index.tolist() == [0, 1]
    assert usual_purchases(_rows().drop(columns="customer_device__missing")).empty


def test_a_takeover_variant_changes_amount_device_and_country_only():
    rows = _rows()
    variant = takeover_variants(rows, "NG", amount_factor=5)
    assert (variant["amount_usd"] == rows["amount_usd"] * 5).all()
    assert (variant["merchant_country"] == "NG").all()
    for view in ("customer_device", "customer_country"):
        assert variant[f"{view}__missing"].all() and (variant[f"{view}__txn_count_30d"] == 0).all()
    untouched = ["label", "customer_daily__amount_avg_30d", "customer_daily__missing"]
    assert variant[untouched].equals(rows[untouched])


def test_the_share_counts_variants_scored_above_their_original():
    by_amount = lambda frame: frame["amount_usd"].to_numpy()  # noqa: E731
    assert takeover_scores_higher(by_amount, _rows(), "NG") == (1.0, 2)
    inverse = lambda frame: -frame["amount_usd"].to_numpy()  # noqa: E731
    assert takeover_scores_higher(inverse, _rows(), "NG") == (0.0, 2)
    share, checked = takeover_scores_higher(by_amount, _rows(), "FR")  # not foreign to anyone
    assert np.isnan(share) and checked == 0
