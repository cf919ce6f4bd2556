"""The handbook's protocol: folds, known-compromised cards out of the test, Card Precision@k,
on small cases worked out by hand."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ml.metrics import card_precision_at_k, fraud_metrics
from ml.protocol import PREQUENTIAL_TEST, SINGLE_SPLIT, Fold, fold_test, fold_train

pytestmark = pytest.mark.unit
D = dt.date(2026, 1, 1)


def day(n: int) -> dt.date:
    return D + dt.timedelta(days=n)


def test_the_single_split_is_the_published_one():
    assert (SINGLE_SPLIT.train_end, SINGLE_SPLIT.test_start, SINGLE_SPLIT.test_end) == (
        dt.date(2018, 7, 31), dt.date(2018, 8, 8), dt.date(2018, 8, 14),
    )  # fmt: skip
    assert PREQUENTIAL_TEST[0].test_end == dt.date(2018, 9, 4)


def test_a_card_leaves_the_test_once_its_fraud_is_known():
    fold = Fold(D)  # train days 0-6, delay 7-13, test 14-20
    rows = pd.DataFrame(
        [
            ("a", 2, 1),  # fraud in training: known from the first test day
            ("a", 14, 0),
            ("b", 8, 1),  # fraud in the delay: known on test day 8 + 7 + 1 = 16
            ("b", 15, 1),
            ("b", 16, 0),
            ("c", 14, 0),
            ("c", 20, 1),
        ],
        columns=["card_id", "n", "label"],
    ).assign(day=lambda f: f["n"].map(day))
    assert fold_train(rows, fold)["n"].tolist() == [2]
    assert fold_test(rows, fold)[["card_id", "n"]].values.tolist() == [
        ["b", 15], ["c", 14], ["c", 20],
    ]  # fmt: skip


def test_card_precision_counts_cards_once_and_skips_cards_already_found():
    # day 0: card x (fraud, 0.9 and 0.1), y (clean, 0.8), z (fraud, 0.3); k = 2 -> x, y: 1/2
    # day 1: x found already; z (fraud, 0.7), y (clean, 0.6), w (clean, 0.5) -> z, y: 1/2
    # k = 4: day 0 finds x and z (2/4); day 1 has only y and w left (0/4)
    days = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    cards = np.array(["x", "x", "y", "z", "x", "z", "y", "w"])
    labels = np.array([1, 0, 0, 1, 1, 1, 0, 0])
    scores = np.array([0.9, 0.1, 0.8, 0.3, 0.99, 0.7, 0.6, 0.5])
    assert card_precision_at_k(days, cards, labels, scores, k=2) == pytest.approx(0.5)
    assert card_precision_at_k(days, cards, labels, scores, k=1) == pytest.approx((1 + 1) / 2)
    assert card_precision_at_k(days, cards, labels, scores, k=4) == pytest.approx(
        (2 / 4 + 0 / 4) / 2
    )


def test_roc_auc_joins_the_metrics():
    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    # 9 (fraud, clean) pairs; 8 ordered right (0.35 < 0.4 is the one wrong)
    assert fraud_metrics(labels, scores)["roc_auc"] == pytest.approx(8 / 9)
