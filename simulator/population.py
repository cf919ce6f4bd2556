"""Customers, cards, devices and merchants of the simulated network, drawn once per seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.catalog import CATEGORIES, COUNTRIES, COUNTRY_WEIGHTS, FOREIGN_ONLY_COUNTRIES

FAVOURITE_MERCHANTS = 8
MAX_CARDS = 2
MAX_DEVICES = 3


@dataclass(frozen=True)
class Population:
    """Entity tables as numpy arrays; row i of each customer array is customer i."""

    customer_country: np.ndarray  # country index into COUNTRIES
    customer_spend: np.ndarray  # multiplier on category amounts
    customer_rate: np.ndarray  # expected transactions per day
    customer_cards: np.ndarray  # (customers, MAX_CARDS) card numbers, -1 = none
    customer_devices: np.ndarray  # (customers, MAX_DEVICES) device numbers, -1 = none
    favourite_merchants: np.ndarray  # (customers, FAVOURITE_MERCHANTS) merchant indices
    merchant_category: np.ndarray  # category index into CATEGORIES
    merchant_country: np.ndarray  # country code per merchant
    merchant_popularity: np.ndarray  # sampling weight, sums to 1
    merchant_risk: np.ndarray  # inherent risk score in [0, 1]

    @property
    def customers(self) -> int:
        return len(self.customer_country)

    @property
    def merchants(self) -> int:
        return len(self.merchant_category)


def prefixed_ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded text ids, e.g. C0000042; empty input gives an empty array."""
    if len(numbers) == 0:
        return np.array([], dtype=str)
    return np.char.add(prefix, np.char.zfill(np.asarray(numbers).astype(str), width))


def customer_id(index: np.ndarray) -> np.ndarray:
    return prefixed_ids("C", index, 7)


def merchant_id(index: np.ndarray) -> np.ndarray:
    return prefixed_ids("M", index, 6)


def card_id(number: np.ndarray) -> np.ndarray:
    return prefixed_ids("K", number, 8)


def device_id(number: np.ndarray) -> np.ndarray:
    return prefixed_ids("D", number, 8)


def _owned_ids(rng: np.random.Generator, customers: int, max_owned: int) -> np.ndarray:
    """Numbers 1..max_owned of things per customer (cards, devices), numbered globally."""
    owned = rng.integers(1, max_owned + 1, size=customers)
    table = np.full((customers, max_owned), -1, dtype=np.int64)
    slots = np.arange(max_owned)[None, :] < owned[:, None]
    table[slots] = np.arange(int(owned.sum()))
    return table


def build_population(rng: np.random.Generator, customers: int) -> Population:
    """Draw the entities; merchants scale with customers (one per 20, at least 60)."""
    country_p = np.array(list(COUNTRY_WEIGHTS.values()))
    customer_country = rng.choice(len(COUNTRIES), size=customers, p=country_p)
    customer_spend = rng.lognormal(0.0, 0.45, size=customers)
    customer_rate = rng.gamma(shape=2.0, scale=0.8, size=customers)

    merchants = max(60, customers // 20)
    category_p = np.array([c.popularity for c in CATEGORIES])
    merchant_category = rng.choice(len(CATEGORIES), size=merchants, p=category_p / category_p.sum())
    # Every category needs a merchant: fraud patterns pick theirs by category (a small network
    # could draw no digital-goods merchant, and card testing had nowhere to go).
    merchant_category[-len(CATEGORIES) :] = np.arange(len(CATEGORIES))
    home_or_foreign = np.array(list(COUNTRIES) + list(FOREIGN_ONLY_COUNTRIES))
    foreign_share = 0.04
    merchant_p = np.concatenate(
        [country_p * (1 - foreign_share), np.full(len(FOREIGN_ONLY_COUNTRIES), foreign_share / 4)]
    )
    merchant_country = home_or_foreign[
        rng.choice(len(home_or_foreign), size=merchants, p=merchant_p)
    ]
    # Every home country needs local merchants for its customers' favourites.
    merchant_country[: 3 * len(COUNTRIES)] = np.tile(COUNTRIES, 3)
    popularity = rng.pareto(1.5, size=merchants) + 1.0
    base_risk = np.array([c.base_risk for c in CATEGORIES])[merchant_category]
    merchant_risk = np.clip(base_risk * rng.lognormal(0.0, 0.5, size=merchants) * 50, 0, 1)

    favourite = np.empty((customers, FAVOURITE_MERCHANTS), dtype=np.int64)
    for country_index, country in enumerate(COUNTRIES):
        members = np.flatnonzero(customer_country == country_index)
        local = np.flatnonzero(merchant_country == country)
        weights = popularity[local] / popularity[local].sum()
        favourite[members] = local[
            rng.choice(len(local), size=(len(members), FAVOURITE_MERCHANTS), p=weights)
        ]

    return Population(
        customer_country=customer_country,
        customer_spend=customer_spend,
        customer_rate=customer_rate,
        customer_cards=_owned_ids(rng, customers, MAX_CARDS),
        customer_devices=_owned_ids(rng, customers, MAX_DEVICES),
        favourite_merchants=favourite,
        merchant_category=merchant_category,
        merchant_country=merchant_country,
        merchant_popularity=popularity / popularity.sum(),
        merchant_risk=merchant_risk,
    )
