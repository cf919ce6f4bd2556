"""The card-fraud handbook's generator: the published transactions and the fraud scenarios'
rules, at a reduced size (the full dataset's counts are checked by `bench/handbook.py`)."""

import numpy as np
import pytest

from simulator.handbook import (
    LARGE_AMOUNT,
    HandbookSize,
    customer_profiles,
    customer_transactions,
    terminal_locations,
    terminals_within,
    transactions,
)

pytestmark = pytest.mark.unit

# The published dataset's first five rows, as the handbook prints them: seconds since
# 2018-04-01, day, customer, terminal, amount.
PUBLISHED = [
    (31, 0, 596, 3156, 57.16),
    (130, 0, 4961, 3412, 81.51),
    (476, 0, 2, 1365, 146.00),
    (569, 0, 4128, 8737, 64.49),
    (634, 0, 927, 9906, 50.99),
]


@pytest.mark.parametrize("published", PUBLISHED, ids=lambda row: f"customer {row[2]}")
def test_a_customer_draws_the_published_transaction(published):
    seconds, day, customer, terminal, amount = published
    customers = customer_profiles(customer + 1)
    terminals = terminals_within(customers.xy[customer], terminal_locations(10_000), 5.0)
    drawn = customer_transactions(customer, customers, terminals, days=1)
    assert (seconds, day, customer, terminal, pytest.approx(amount, abs=0.005)) in drawn


@pytest.fixture(scope="module")
def small():
    return transactions(HandbookSize(customers=300, terminals=2_000, days=45))


def test_rows_are_in_time_order_with_their_rank_as_id(small):
    assert small["TX_TIME_SECONDS"].is_monotonic_increasing
    assert (small["TRANSACTION_ID"].to_numpy() == np.arange(len(small))).all()
    assert (small["TX_TIME_DAYS"] == small["TX_TIME_SECONDS"] // 86_400).all()
    assert small["TX_DATETIME"].min().date().isoformat() == "2018-04-01"


def test_each_scenario_follows_its_rule(small):
    fraud, scenario = small["TX_FRAUD"], small["TX_FRAUD_SCENARIO"]
    assert set(scenario.unique()) == {0, 1, 2, 3}
    assert ((fraud == 1) == (scenario > 0)).all()
    assert (small.loc[scenario == 1, "TX_AMOUNT"] > LARGE_AMOUNT).all()
    assert (small.loc[scenario == 0, "TX_AMOUNT"] <= LARGE_AMOUNT).all()
    # scenario 2: every transaction of a compromised terminal during its 28 days is a fraud
    days = small["TX_TIME_DAYS"].to_numpy()
    for day in range(int(days.max())):
        hit = np.isin(small["TERMINAL_ID"], np.random.RandomState(day).permutation(2_000)[:2])
        in_window = hit & (days >= day) & (days < day + 28)
        assert (fraud[in_window] == 1).all()
    # scenario 3: a third (rounded down) of a victim's 14 days, at five times the amount
    third = small[scenario == 3]
    assert len(third) > 0 and (third["TX_AMOUNT"] > 0).all()


def test_the_same_size_gives_the_same_data(small):
    again = transactions(HandbookSize(customers=300, terminals=2_000, days=45))
    assert again.equals(small)
